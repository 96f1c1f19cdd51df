"""The four commands: open each repository, render its reference, build the tables.

A repository that cannot be used (not a git repository, no `.cruft.json`, answers that break a
rule, a reference that cannot be rendered, a damaged file, a clone that times out, ...) is
reported on one line, gets an error row in the tables, and the others go on; the command then
exits 1. Whatever a team's files make this code raise stays that team's error: a hostile
repository never stops the run or spoils another team's row.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from mlops_template.activity import authors
from mlops_template.check import run_checker, summary_row
from mlops_template.diff import compare
from mlops_template.errors import ToolError
from mlops_template.extension import extension
from mlops_template.files import COMPARED_BYTES
from mlops_template.reference import Reference, References
from mlops_template.repos import Team, display_names, open_team
from mlops_template.sources import Sources, source_pair
from mlops_template.tables import Table, clean

T = TypeVar("T")


@dataclass
class Entry:
    """One repository given on the command line, and how far it could be opened."""

    name: str
    source: str
    team: Team | None = None
    reference: Reference | None = None
    error: str | None = None


def say(message: str) -> None:
    """A line on stderr, without the control characters a team's text could hold."""
    print(clean(message), file=sys.stderr, flush=True)


def attempt(entry: Entry, action: Callable[[], T]) -> T | None:
    """`action()`, or None when it fails: the failure becomes the entry's one-line error.

    Every exception is caught, not only the expected ones: a team's files are untrusted, and
    whatever they make this code raise must stay that team's problem."""
    if entry.error:
        return None
    try:
        return action()
    except ToolError as error:
        entry.error = " ".join(str(error).split())[:300]
    except RecursionError:
        entry.error = "a file nests too deeply to be read"
    except Exception as error:  # see the docstring
        entry.error = f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"
    say(f"error: {entry.name}: {entry.error}")
    return None


def open_entries(sources: list[str], cache: Path, references: References | None) -> list[Entry]:
    """Open every repository (and render its reference); problems become one-line errors."""
    entries = [Entry(n, s) for n, s in zip(display_names(sources), sources, strict=True)]
    for entry in entries:
        entry.team = attempt(entry, lambda e=entry: open_team(e.name, e.source, cache))
        if references is not None:
            entry.reference = attempt(entry, lambda e=entry: references.reference(e.team))
            if entry.reference and entry.reference.warning:
                say(f"warning: {entry.name}: {entry.reference.warning}")
            for note in entry.reference.notes if entry.reference else []:
                say(f"note: {entry.name}: {note}")
    return entries


def sources_of(entry: Entry, ignore: list[str], limit: int = COMPARED_BYTES) -> Sources:
    """The reference's and the team's source files."""
    patterns = [*entry.team.skipped, *ignore]
    return source_pair(entry.reference.path, entry.team.path, patterns, limit)


def commit_of(entry: Entry) -> str:
    commit = entry.reference.commit if entry.reference else None
    return commit[:12] if commit else "current files"


def check_tables(entries: list[Entry], output: Path, run: bool) -> list[Table]:
    reports = {}
    for entry in entries:
        report_file = output / "check" / f"{entry.name}.json"
        report = attempt(
            entry, lambda e=entry, f=report_file: run_checker(e.team, e.reference.path, f, run)
        )
        if report is not None:
            reports[entry.name] = report
    ids = list(dict.fromkeys(m["id"] for r in reports.values() for m in r["milestones"]))
    summary = Table(
        "Milestones per team",
        "check.csv",
        ["team", *ids, "total", "done", "deleted", "first missing", "reference"],
        note="Score/maximum per milestone from the reference's checker, in whole points; done: "
        "milestones whose every deliverable passed; deleted: deliverables whose files are gone; "
        "first missing: the first deliverables there but not finished.",
    )
    details = Table(
        "Deliverables",
        "check-deliverables.csv",
        ["team", "milestone", "deliverable", "status", "score", "max", "message"],
        note="Every deliverable of every team; `not checked`: needs --run or a tool.",
    )
    for entry in entries:
        if entry.error:
            summary.rows.append([entry.name, *[""] * (len(ids) + 3), f"error: {entry.error}", ""])
            continue
        report = reports[entry.name]
        summary.rows.append([entry.name, *summary_row(report, ids), commit_of(entry)])
        for m in report["milestones"]:
            for d in m["deliverables"]:
                row = [m["id"], d["id"], d["status"], d["score"], d["max_score"], d["message"]]
                details.rows.append([entry.name, *row])
    return [summary, details]


def diff_tables(entries: list[Entry], ignore: list[str], limit: int) -> list[Table]:
    summary = Table(
        "Changes per team (reference -> team)",
        "diff.csv",
        ["team", "missing", "modified", "added", "renamed", "generated", "not read", "unchanged",
         "lines +", "lines -", "new lines", "new stages", "new tests", "new endpoints",
         "extension", "reference"],
        note="Files: counts of source files. generated: what the pipeline or `make setup` wrote "
        "(reports/, .dvcignore, the cards' pipeline sections), apart from the team's work; not "
        "read: links, devices and files over the size limit. lines +/-: over the team's changes "
        "(generated ones left out). new lines: non-blank lines of added code and text files. "
        "extension = new lines / 20 + 5 x new stages + 1 x new tests + 3 x new endpoints.",
    )  # fmt: skip
    files = Table(
        "Changed files",
        "diff-files.csv",
        ["team", "change", "path", "reference path", "lines +", "lines -", "similarity", "note"],
        note="missing: in the reference, not in the team's repository; renamed: reference path "
        "-> path, similarity = share of the reference file's lines found in the team's file; "
        "generated: written by the pipeline or `make setup`; not read: see note; empty line "
        "counts: a binary file.",
    )
    for entry in entries:
        sides = attempt(entry, lambda e=entry: sources_of(e, ignore, limit))
        result = attempt(entry, lambda s=sides: compare(s))
        grown = attempt(entry, lambda r=result, s=sides: extension(r, s.reference, s.team))
        if entry.error:
            summary.rows.append([entry.name, *[""] * 14, f"error: {entry.error}"])
            continue
        kinds = ("missing", "modified", "added", "renamed", "generated", "not read")
        counts = [len(result.of(c)) for c in kinds]
        own = [c for c in result.changes if c.change != "generated"]
        plus = sum(c.added or 0 for c in own)
        minus = sum(c.removed or 0 for c in own)
        summary.rows.append([
            entry.name, *counts, result.unchanged, plus, minus, grown.new_lines,
            ", ".join(grown.new_stages) or 0, grown.new_tests,
            ", ".join(grown.new_endpoints) or 0, grown.score, commit_of(entry),
        ])  # fmt: skip
        for c in result.changes:
            reference_path = c.reference_path if c.change == "renamed" else ""
            files.rows.append([
                entry.name, c.change, c.path, reference_path, c.added, c.removed, c.similarity,
                c.note,
            ])  # fmt: skip
    return [summary, files]


def similar_tables(
    entries: list[Entry], ignore: list[str], threshold: float, min_overlap: int, limit: int
) -> list[Table]:
    # copydetect imports numpy and matplotlib (~2 s): only this command pays for them.
    from mlops_template.similarity import Fingerprinter, TeamSources, find_matches

    teams, refused = [], []
    for entry in entries:
        sides = attempt(entry, lambda e=entry: sources_of(e, ignore, limit))
        if sides:
            teams.append(TeamSources(entry.name, sides.team, sides.reference))
            refused += [[entry.name, path, why] for path, why in sides.refused.items()]
    # Each team's fingerprints alone: a file that breaks copydetect is that team's error.
    fingerprinter = Fingerprinter([team.reference for team in teams]) if len(teams) > 1 else None
    prints = {}
    for team in teams:
        entry = next(e for e in entries if e.name == team.name)
        found = attempt(entry, lambda t=team: fingerprinter.team(t)) if fingerprinter else None
        if found is not None:
            prints[team.name] = found
    matches = find_matches(fingerprinter, prints, threshold, min_overlap) if len(prints) > 1 else []
    pairs: dict[tuple[str, str], list] = {}
    for m in matches:
        pairs.setdefault((m.team_a, m.team_b), []).append(m)
    summary = Table(
        "Team pairs over the threshold",
        "similar.csv",
        ["team A", "team B", "file pairs", "highest similarity", "shared tokens"],
        note=f"Template code is boilerplate and never matches. A file pair is listed when the "
        f"shared code covers at least {threshold:.0%} of either file's own code and at least "
        f"{min_overlap} tokens. A heuristic: read both files before concluding anything.",
    )
    for (a, b), found in pairs.items():
        highest = max(max(m.similarity_a, m.similarity_b) for m in found)
        summary.rows.append([a, b, len(found), f"{highest:.0%}", sum(m.overlap for m in found)])
    files = Table(
        "File pairs",
        "similar-files.csv",
        ["team A", "file A", "team B", "file B", "A in B", "B in A", "shared tokens"],
        note="A in B: share of file A's own code (template code left out) found in file B.",
    )
    for m in matches:
        files.rows.append([m.team_a, m.file_a, m.team_b, m.file_b, f"{m.similarity_a:.0%}",
                           f"{m.similarity_b:.0%}", m.overlap])  # fmt: skip
    errors = Table("Repositories not compared", "similar-errors.csv", ["team", "error"])
    errors.rows = [[e.name, e.error] for e in entries if e.error]
    skipped = Table(
        "Files not compared", "similar-refused.csv", ["team", "path", "why"],
        note="Links are not followed; devices and files over the size limit are not read.",
    )  # fmt: skip
    skipped.rows = refused
    return [summary, files, errors, skipped]


def activity_tables(entries: list[Entry], since: str | None) -> list[Table]:
    table = Table(
        "Activity per member",
        "activity.csv",
        ["team", "author", "email", "commits", "share", "lines +", "lines -", "first", "last"],
        note="Non-merge commits, without the generation commit; lines in source files only. "
        "Commit counts and lines measure activity, not contribution: pair work, squashed "
        "merges and generated files distort them.",
    )
    for entry in entries:
        found = attempt(entry, lambda e=entry: authors(e.team.path, since))
        if entry.error:
            table.rows.append([entry.name, f"error: {entry.error}", *[""] * 7])
            continue
        total = sum(a.commits for a in found) or 1
        for a in found:
            table.rows.append([entry.name, a.name, a.email, a.commits, f"{a.commits / total:.0%}",
                               a.added, a.removed, a.first, a.last])  # fmt: skip
        if not found:
            table.rows.append([entry.name, "(no commits beyond the generation commit)", *[""] * 7])
    return [table]
