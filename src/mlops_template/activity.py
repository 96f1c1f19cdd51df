"""Per-member git activity, as course graders read it: commits and lines by author email.

Merges are left out, and so is the generation commit (`Initial commit from mlops-template`),
whose lines are the template's, not its author's. Lines are counted in source files only (the
rules of `sources.py`: no lock files, data, models or pipeline outputs). Authors are grouped by
email, lowercased, after the repository's `.mailmap`; a member who committed from two addresses
shows twice unless the team maps them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mlops_template.git import git
from mlops_template.sources import SourceRules

GENERATION_SUBJECT = "Initial commit from mlops-template"
RECORD, UNIT = "\x1e", "\x1f"
RENAMED = re.compile(r"\{[^{}]* => ([^{}]*)\}")


@dataclass
class Author:
    email: str
    names: Counter = field(default_factory=Counter)
    commits: int = 0
    added: int = 0
    removed: int = 0
    first: str = ""
    last: str = ""

    @property
    def name(self) -> str:
        return self.names.most_common(1)[0][0] if self.names else ""


def new_path(numstat_path: str) -> str:
    """The path after a rename: `a/{old => new}/b` -> `a/new/b`, `old => new` -> `new`."""
    path = RENAMED.sub(r"\1", numstat_path)
    return path.split(" => ")[-1].replace("//", "/")


def authors(repository: Path, since: str | None = None) -> list[Author]:
    """The repository's authors, most commits first."""
    log_format = f"--format={RECORD}%aE{UNIT}%aN{UNIT}%as{UNIT}%s"
    args = ["log", "--no-merges", "--numstat", "-M", log_format]
    log = git(*args, *([f"--since={since}"] if since else []), cwd=repository, check=False) or ""
    rules, found = SourceRules(), {}
    for entry in log.split(RECORD)[1:]:
        header, _, numstat = entry.partition("\n")
        email, name, date, subject = header.split(UNIT, 3)
        if subject.startswith(GENERATION_SUBJECT):
            continue
        author = found.setdefault(email.lower(), Author(email.lower()))
        author.names[name] += 1
        author.commits += 1
        author.first = min(author.first or date, date)
        author.last = max(author.last, date)
        for line in numstat.splitlines():
            added, removed, path = [*line.split("\t", 2), "", ""][:3]
            if added.isdigit() and removed.isdigit() and rules.is_source(new_path(path)):
                author.added += int(added)
                author.removed += int(removed)
    return sorted(found.values(), key=lambda a: (-a.commits, a.email))
