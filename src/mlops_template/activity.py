"""Per-member git activity, as course graders read it: commits and lines by author email.

Merges are left out, and so is the generation commit (`Initial commit from mlops-template`),
whose lines are the template's, not its author's. Lines are counted in source files only (the
rules of `sources.py`: no lock files, data, models or pipeline outputs) and never in what is
generated (`reports/`, `.dvcignore`, and the sections the pipeline writes into Markdown files
between pipeline markers): committing a pipeline run credits nobody. Authors are grouped by
email, lowercased, after the repository's `.mailmap`; a member who committed from two addresses
shows twice unless the team maps them.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mlops_template.git import git
from mlops_template.sources import PIPELINE_BLOCK, SourceRules, is_generated, team_text

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


def blob(repository: Path, revision: str, path: str) -> str:
    """A file's text at a revision; empty when it did not exist there."""
    text = git("cat-file", "blob", f"{revision}:{path}", cwd=repository, check=False, binary=True)
    return (text or b"").decode("utf-8", errors="replace")


def markdown_lines(repository: Path, commit: str, parent: str, path: str) -> tuple[int, int] | None:
    """Lines a commit added and removed in a Markdown file outside its pipeline sections; None
    when neither side has such sections (git's own count holds then)."""
    texts = [blob(repository, parent, path) if parent else "", blob(repository, commit, path)]
    if not any(PIPELINE_BLOCK.search(text) for text in texts):
        return None
    old, new = (team_text(text).splitlines() for text in texts)
    diff = list(difflib.unified_diff(old, new, lineterm="", n=0))[2:]
    return sum(line[0] == "+" for line in diff), sum(line[0] == "-" for line in diff)


def authors(repository: Path, since: str | None = None) -> list[Author]:
    """The repository's authors, most commits first."""
    log_format = f"--format={RECORD}%H{UNIT}%P{UNIT}%aE{UNIT}%aN{UNIT}%as{UNIT}%s"
    args = ["log", "--no-merges", "--numstat", "-M", "--no-textconv", "--no-ext-diff", log_format]
    log = git(*args, *([f"--since={since}"] if since else []), cwd=repository, check=False) or ""
    rules, found = SourceRules(), {}
    for entry in log.split(RECORD)[1:]:
        header, _, numstat = entry.partition("\n")
        commit, parents, email, name, date, subject = header.split(UNIT, 5)
        if subject.startswith(GENERATION_SUBJECT):
            continue
        author = found.setdefault(email.lower(), Author(email.lower()))
        author.names[name] += 1
        author.commits += 1
        author.first = min(author.first or date, date)
        author.last = max(author.last, date)
        for line in numstat.splitlines():
            added, removed, path = [*line.split("\t", 2), "", ""][:3]
            path = new_path(path)
            if not (added.isdigit() and removed.isdigit()) or is_generated(path):
                continue
            if not rules.is_source(path):
                continue
            own = None
            if path.endswith(".md") and " => " not in line:  # a renamed file: git's count
                own = markdown_lines(repository, commit, parents.split(" ")[0], path)
            lines = own or (int(added), int(removed))
            author.added += lines[0]
            author.removed += lines[1]
    return sorted(found.values(), key=lambda a: (-a.commits, a.email))
