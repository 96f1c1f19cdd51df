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
- in `reports/`: only the files the template ships and Markdown the team writes;
- the paths `.cruft.json` lists under `skip`, and the `--ignore` patterns given.

On the team's side only files git would track are read: tracked files and untracked ones that
`.gitignore` does not exclude (`git ls-files --cached --others --exclude-standard`).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

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


def dvc_outputs(dvc_yaml: Path) -> list[str]:
    """Paths a dvc.yaml declares as outputs, metrics or plots (templated paths left out)."""
    try:
        document = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    stages = document.get("stages") if isinstance(document, dict) else None
    entries = []
    for stage in (stages or {}).values():
        if isinstance(stage, dict):
            entries += [e for key in ("outs", "metrics", "plots") for e in stage.get(key) or []]
    entries += document.get("plots") or [] if isinstance(document, dict) else []
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
        if parts[0] == "reports" and not relative.endswith(".md"):
            return False
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


def team_files(team: Path, rules: SourceRules) -> dict[str, Path]:
    """The team's source files (those git would track): relative POSIX path -> file."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=team)
    found = {}
    for relative in sorted(set(filter(None, listed.split("\0")))):
        path = team / relative
        if path.is_file() and not path.is_symlink() and rules.is_source(relative):
            found[relative] = path
    return found


def source_pair(reference: Path, team: Path, patterns: list[str]):
    """Both sides' source files, under the same rules: (reference files, team files)."""
    ours = reference_files(reference, patterns)
    rules = SourceRules(set(ours), dvc_outputs(team / "dvc.yaml"), patterns)
    return ours, team_files(team, rules)


def read_text(path: Path) -> str | None:
    """A file's text, or None for a binary file (a NUL byte, or not UTF-8)."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
