"""Compare a team's source files with its reference render, file by file, reference -> team.

- missing: in the reference, not in the team's repository (and not renamed);
- modified: in both, with different bytes; lines added and removed as `git diff` counts them;
- added: in the team's repository, not in the reference (and not a rename's target);
- renamed: a missing reference file whose content is mostly in an added team file. "Mostly":
  at least RENAME_THRESHOLD (60%) of the reference file's non-blank lines, compared stripped and
  counted with repetition, are lines of the team's file. Reference files with fewer than
  SMALL_FILE non-blank lines (an `__init__.py` docstring, a `.gitkeep`) and binary files count
  as renamed only when the content is identical. Each file takes part in one rename at most,
  best match first;
- generated: what the pipeline or `make setup` wrote (sources.is_generated), or a Markdown file
  whose only differences lie in the sections between pipeline markers; in a file that also has
  differences of the team's, the lines counted are the team's only;
- not read: a team file that is a link, not a regular file, or over the size limit (its reason
  in `note`).
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mlops_template.git import git
from mlops_template.sources import (
    PIPELINE_BLOCK,
    Sources,
    is_generated,
    read_text_or_none,
    team_text,
)

RENAME_THRESHOLD = 0.6
SMALL_FILE = 3


@dataclass(frozen=True)
class FileChange:
    """One changed file. `path` is the team's path (the reference's for a missing file)."""

    change: str  # missing | modified | added | renamed | generated | not read
    path: str
    reference_path: str | None
    added: int | None  # lines; None for a binary file
    removed: int | None
    similarity: float | None = None  # renamed files only
    note: str = ""


@dataclass
class Comparison:
    """Every difference between a reference and a team, and the count of unchanged files."""

    changes: list[FileChange] = field(default_factory=list)
    unchanged: int = 0

    def of(self, change: str) -> list[FileChange]:
        return [c for c in self.changes if c.change == change]


def line_changes(before: Path | None, after: Path | None) -> tuple[int | None, int | None]:
    """Lines added and removed from `before` to `after` (None: no file), as git counts them."""
    sides = [str(before) if before else "/dev/null", str(after) if after else "/dev/null"]
    output = git("diff", "--no-index", "--numstat", "--no-color", "--", *sides, ok=(0, 1))
    for line in output.splitlines():
        added, removed, _ = line.split("\t", 2)
        if added == "-":
            return None, None
        return int(added), int(removed)
    return 0, 0  # the same text (only the mode or line endings git normalises differ)


def line_count(path: Path) -> int | None:
    """A whole file's lines as `git diff` counts them; None for a binary file."""
    text = read_text_or_none(path)
    if text is None:
        return None
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def content_lines(path: Path) -> Counter | None:
    """Stripped non-blank lines with their counts; None for a binary file."""
    text = read_text_or_none(path)
    if text is None:
        return None
    return Counter(line.strip() for line in text.splitlines() if line.strip())


def containment(reference: Path, team: Path, lines: dict[Path, Counter | None]) -> float:
    """How much of the reference file's content is in the team's file (0 to 1)."""
    ours, theirs = lines[reference], lines[team]
    if ours is None or theirs is None or sum(ours.values()) < SMALL_FILE:
        return 1.0 if reference.read_bytes().strip() == team.read_bytes().strip() else 0.0
    return sum((ours & theirs).values()) / sum(ours.values())


def find_renames(missing: dict[str, Path], added: dict[str, Path]) -> list[tuple[str, str, float]]:
    """(reference path, team path, similarity) for each rename, best match first."""
    lines = {path: content_lines(path) for path in [*missing.values(), *added.values()]}
    candidates = []
    for old, old_path in missing.items():
        for new, new_path in added.items():
            score = containment(old_path, new_path, lines)
            if score >= RENAME_THRESHOLD:
                other_name = Path(old).name != Path(new).name
                candidates.append((-score, other_name, old, new))
    renames, used = [], set()
    for negative_score, _, old, new in sorted(candidates):
        if old not in used and new not in used:
            used |= {old, new}
            renames.append((old, new, -negative_score))
    return renames


def team_line_changes(before: Path, after: Path) -> tuple[int, int] | None:
    """Lines added and removed outside the pipeline's sections, when a side has such sections;
    None otherwise (or for a binary file)."""
    texts = [read_text_or_none(before), read_text_or_none(after)]
    if None in texts or not any(PIPELINE_BLOCK.search(text) for text in texts):
        return None
    old, new = (team_text(text).splitlines() for text in texts)  # type: ignore[arg-type]
    diff = list(difflib.unified_diff(old, new, lineterm="", n=0))[2:]
    added = sum(1 for line in diff if line.startswith("+"))
    return added, sum(1 for line in diff if line.startswith("-"))


def compare(sources: Sources) -> Comparison:
    """The comparison of a team's source files with its reference's."""
    reference, team, result = sources.reference, sources.team, Comparison()
    for relative in sorted(set(reference) & set(team)):
        if reference[relative].read_bytes() == team[relative].read_bytes():
            result.unchanged += 1
            continue
        own = team_line_changes(reference[relative], team[relative])
        if is_generated(relative) or own == (0, 0):
            added, removed = line_changes(reference[relative], team[relative])
            result.changes.append(FileChange("generated", relative, relative, added, removed))
            continue
        added, removed = own or line_changes(reference[relative], team[relative])
        result.changes.append(FileChange("modified", relative, relative, added, removed))
    missing = {p: f for p, f in reference.items() if p not in team and p not in sources.refused}
    extra = {p: f for p, f in team.items() if p not in reference}
    for old, new, score in find_renames(missing, extra):
        added, removed = line_changes(missing.pop(old), extra.pop(new))
        result.changes.append(FileChange("renamed", new, old, added, removed, round(score, 3)))
    for relative, path in missing.items():
        change = "generated" if is_generated(relative) else "missing"
        result.changes.append(FileChange(change, relative, relative, 0, line_count(path)))
    for relative, path in extra.items():
        change = "generated" if is_generated(relative) else "added"
        result.changes.append(FileChange(change, relative, None, line_count(path), 0))
    for relative, reason in sources.refused.items():
        result.changes.append(FileChange("not read", relative, None, None, None, note=reason))
    order = {"missing": 0, "modified": 1, "added": 2, "renamed": 3, "generated": 4, "not read": 5}
    result.changes.sort(key=lambda c: (order[c.change], c.path))
    return result
