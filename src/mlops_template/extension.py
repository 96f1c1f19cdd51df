"""The extension score: how far a team went beyond the scaffold, as one number to sort by.

    score = new lines / 20 + 5 x new stages + 1 x new tests + 3 x new endpoints

- new lines: non-blank lines of the source files the team added (files outside the template;
  a renamed template file is not outside it). Only code and text files count (SOURCE_SUFFIXES,
  Dockerfile, Makefile); a notebook counts the lines of its cells, not its JSON or outputs.
  Lines changed inside template files are shown beside it, not scored: filling the template's
  documents and stages is what the milestone checker grades.
- new stages: stages of the team's dvc.yaml that the reference's dvc.yaml does not define.
- new tests: test functions (`def test_*` in `test_*.py` or `*_test.py`) beyond the reference's,
  counted by name with repetition over the whole repository.
- new endpoints: (method, path) routes declared in Python files (`@router.get("/path")`,
  `app.add_api_route("/path", ...)`, ...) that the reference does not declare.

100 new lines weigh as much as one new stage. It is a sorting aid, not a grade.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlops_template.diff import Comparison
from mlops_template.sources import notebook_code, read_text_or_none

SOURCE_SUFFIXES = {
    ".py", ".pyi", ".ipynb", ".md", ".rst", ".txt", ".yaml", ".yml", ".toml", ".cfg", ".ini",
    ".sh", ".bash", ".sql", ".js", ".ts", ".css", ".html", ".j2", ".jinja", ".r", ".R",
}  # fmt: skip
SOURCE_NAMES = {"Dockerfile", "Containerfile", "Makefile", "justfile", "Procfile"}
WEIGHTS = {"lines": 1 / 20, "stages": 5, "tests": 1, "endpoints": 3}
TEST = re.compile(r"^\s*(?:async\s+)?def\s+(test_\w+)\s*\(", re.MULTILINE)
ROUTE = re.compile(
    r"\.(get|post|put|patch|delete|head|options|route|api_route|add_api_route|add_route|websocket)"
    r"\(\s*[\"'](/[^\"']*)[\"']"
)


@dataclass(frozen=True)
class Extension:
    new_lines: int
    edited_lines: int  # lines added inside template files (modified or renamed): not scored
    new_stages: list[str]
    new_tests: int
    new_endpoints: list[str]

    @property
    def score(self) -> float:
        total = (
            WEIGHTS["lines"] * self.new_lines
            + WEIGHTS["stages"] * len(self.new_stages)
            + WEIGHTS["tests"] * self.new_tests
            + WEIGHTS["endpoints"] * len(self.new_endpoints)
        )
        return round(total, 1)


def source_lines(path: Path) -> int:
    """Non-blank lines of a code or text file; of its cells for a notebook; 0 otherwise."""
    if path.suffix not in SOURCE_SUFFIXES and path.name not in SOURCE_NAMES:
        return 0
    text = read_text_or_none(path)
    if text is None:
        return 0
    if path.suffix == ".ipynb":
        text = notebook_code(text) or ""
    return sum(1 for line in text.splitlines() if line.strip())


def stages(dvc_yaml: Path | None) -> set[str]:
    try:
        document = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) if dvc_yaml else {}
    except (OSError, yaml.YAMLError, RecursionError):
        return set()
    found = document.get("stages") if isinstance(document, dict) else None
    return set(found) if isinstance(found, dict) else set()


def tests(files: dict[str, Path]) -> Counter:
    names = Counter()
    for relative, path in files.items():
        name = Path(relative).name
        if name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")):
            names.update(TEST.findall(read_text_or_none(path) or ""))
    return names


def routes(files: dict[str, Path]) -> set[str]:
    found = set()
    for relative, path in files.items():
        if relative.endswith(".py"):
            text = read_text_or_none(path) or ""
            found |= {f"{method.upper()} {route}" for method, route in ROUTE.findall(text)}
    return found


def extension(
    comparison: Comparison, reference: dict[str, Path], team: dict[str, Path]
) -> Extension:
    """The extension of a team over its reference, from their source files and comparison."""
    new_lines = sum(source_lines(team[c.path]) for c in comparison.of("added"))
    edited = [c for c in comparison.changes if c.change in ("modified", "renamed")]
    return Extension(
        new_lines=new_lines,
        edited_lines=sum(c.added or 0 for c in edited),
        new_stages=sorted(stages(team.get("dvc.yaml")) - stages(reference.get("dvc.yaml"))),
        new_tests=sum((tests(team) - tests(reference)).values()),
        new_endpoints=sorted(routes(team) - routes(reference)),
    )
