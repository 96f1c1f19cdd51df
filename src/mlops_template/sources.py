"""What counts as a team's source, on both sides of a comparison.

Not source, so never listed, compared or scored:

- tools' state, at any depth: `.git`, `.venv`, `venv`, `.tools`, `.dvc` (DVC's cache, temporary
  files and the config `dvc init` writes), `__pycache__`, `*.pyc`, `.pytest_cache`,
  `.ruff_cache`, `.mypy_cache`, `.hypothesis`, `.ipynb_checkpoints`, `htmlcov`, `node_modules`,
  `*.egg-info`;
- the project's outputs at its top: `mlruns/`, `mlartifacts/`, `mlflow.db`, `dvc-remote/`,
  `dvc_plots/`, `site/`, `build/`, `dist/`, `.env`, `.coverage`, `.cruft.json`;
- lock files, written by tools: `uv.lock`, `dvc.lock` (the milestone checker looks at them);
- data and models: in `data/` and `models/` only `.gitkeep` and `.dvc` pointer files count;
- pipeline outputs: every path the team's `dvc.yaml` declares as an output, metric or plot,
  unless the template ships it (the cards in `docs/` are outputs the team also writes);
- the paths `.cruft.json` lists under `skip`, and the `--ignore` patterns given.

Generated, so compared apart from what a team wrote (`generated`): whatever is in `reports/` (the
pipeline writes it), `.dvcignore` (`make setup` writes it), and the sections of a Markdown file
between `<!-- pipeline:NAME:start -->` and `<!-- pipeline:NAME:end -->` (the `card` stage writes
them into the cards): `team_text` blanks them out.

On the team's side only files git would track are read: tracked files and untracked ones that
`.gitignore` does not exclude (`git ls-files --cached --others --exclude-standard`), and of those
only regular files within the size limit: a link, a device or a file over the limit is listed in
`Sources.refused` with the reason, never read.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mlops_template.errors import ToolError
from mlops_template.files import COMPARED_BYTES, read_text, refusal
from mlops_template.git import git

TOOL_FOLDERS = {
    ".git", ".venv", "venv", ".tools", ".dvc", "__pycache__", ".pytest_cache", ".ruff_cache",
    ".mypy_cache", ".hypothesis", ".ipynb_checkpoints", "htmlcov", "node_modules",
}  # fmt: skip
TOP_OUTPUTS = {
    "mlruns", "mlartifacts", "mlflow.db", "dvc-remote", "dvc_plots", "site", "build", "dist",
    ".env", ".coverage", ".cruft.json",
}  # fmt: skip
LOCK_FILES = {"uv.lock", "dvc.lock"}
DATA_FOLDERS = {"data", "models"}
# What the pipeline and `make setup` write: compared apart from what a team wrote.
GENERATED_FOLDERS = {"reports"}
GENERATED_FILES = {".dvcignore"}
PIPELINE_BLOCK = re.compile(
    r"(<!-- pipeline:([\w-]+):start -->).*?(<!-- pipeline:\2:end -->)", re.DOTALL
)
# dvc.yaml is small: a larger one is not read.
DVC_YAML_BYTES = 1_000_000


def is_generated(relative: str) -> bool:
    return relative.split("/")[0] in GENERATED_FOLDERS or relative in GENERATED_FILES


def team_text(text: str) -> str:
    """`text` with the sections the pipeline writes (between pipeline markers) emptied."""
    return PIPELINE_BLOCK.sub(r"\1\3", text)


def listing(value: object) -> list:
    return value if isinstance(value, list) else []


def dvc_outputs(dvc_yaml: Path) -> list[str]:
    """Paths a dvc.yaml declares as outputs, metrics or plots (templated paths left out); none
    when it is missing, damaged or not a regular file."""
    try:
        document = yaml.safe_load(read_text(dvc_yaml, DVC_YAML_BYTES, "dvc.yaml")) or {}
    except (ToolError, yaml.YAMLError, RecursionError):
        return []
    if not isinstance(document, dict):
        return []
    stages = document.get("stages") if isinstance(document.get("stages"), dict) else {}
    entries = []
    for stage in stages.values():
        if isinstance(stage, dict):
            entries += [e for key in ("outs", "metrics", "plots") for e in listing(stage.get(key))]
    entries += listing(document.get("plots"))
    paths = []
    for entry in entries:
        names = entry.keys() if isinstance(entry, dict) else [entry]
        paths += [str(name).strip("/") for name in names if "${" not in str(name)]
    return paths


def matches(relative: str, pattern: str) -> bool:
    """Whether a path is `pattern` (a glob) or lies inside the folder it names."""
    pattern = pattern.strip("/")
    return fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(relative, f"{pattern}/*")


@dataclass
class SourceRules:
    """Decides what is source; `reference` is the set of files the reference render holds."""

    reference: set[str] = field(default_factory=set)
    outputs: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)

    def never(self, relative: str) -> bool:
        """Tools' state, outputs, lock files and ignored patterns: never source, either side."""
        parts = relative.split("/")
        if any(p in TOOL_FOLDERS or p.endswith((".egg-info", ".pyc")) for p in parts):
            return True
        if parts[0] in TOP_OUTPUTS or relative in LOCK_FILES:
            return True
        return any(matches(relative, pattern) for pattern in self.patterns)

    def is_source(self, relative: str) -> bool:
        """Whether a team's file is source (what the template ships always is, unless never)."""
        if self.never(relative):
            return False
        if relative in self.reference:
            return True
        parts = relative.split("/")
        if parts[0] in DATA_FOLDERS and not (parts[-1] == ".gitkeep" or relative.endswith(".dvc")):
            return False
        if is_generated(relative):
            return True  # listed, and compared apart as generated
        return not any(matches(relative, output) for output in self.outputs)


def reference_files(reference: Path, patterns: list[str]) -> dict[str, Path]:
    """The reference render's source files: relative POSIX path -> file."""
    rules = SourceRules(patterns=patterns)
    found = {}
    for folder, subfolders, files in os.walk(reference):
        subfolders[:] = sorted(s for s in subfolders if s not in TOOL_FOLDERS)
        for name in files:
            path = Path(folder) / name
            relative = path.relative_to(reference).as_posix()
            if not rules.never(relative):
                found[relative] = path
    return dict(sorted(found.items()))


@dataclass
class Sources:
    """Both sides of a comparison: the reference's files, the team's, and the team's files that
    were not read (relative path -> why)."""

    reference: dict[str, Path]
    team: dict[str, Path]
    refused: dict[str, str] = field(default_factory=dict)


def team_files(team: Path, rules: SourceRules, limit: int) -> tuple[dict, dict]:
    """The team's source files (those git would track) and those refused: relative path ->
    file, relative path -> why it was not read."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=team)
    found, refused = {}, {}
    for relative in sorted(set(filter(None, listed.split("\0")))):
        path = team / relative
        if not (path.exists() or path.is_symlink()) or not rules.is_source(relative):
            continue
        reason = refusal(path, limit)
        if reason:
            refused[relative] = reason
        else:
            found[relative] = path
    return found, refused


def source_pair(reference: Path, team: Path, patterns: list[str],
                limit: int = COMPARED_BYTES) -> Sources:  # fmt: skip
    """Both sides' source files, under the same rules."""
    ours = reference_files(reference, patterns)
    rules = SourceRules(set(ours), dvc_outputs(team / "dvc.yaml"), patterns)
    theirs, refused = team_files(team, rules, limit)
    return Sources(ours, theirs, refused)


def read_text_or_none(path: Path) -> str | None:
    """A file's text, or None for a binary file (a NUL byte, or not UTF-8)."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def notebook_code(text: str) -> str | None:
    """The code cells of a notebook's JSON, joined; None when it is not a readable notebook."""
    try:
        cells = json.loads(text).get("cells", [])
    except (ValueError, AttributeError, RecursionError):
        return None
    code = []
    for cell in listing(cells):
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            parts = source if isinstance(source, list) else [source]
            code.append("".join(part for part in parts if isinstance(part, str)))
    return "\n\n".join(code)
