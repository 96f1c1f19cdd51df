"""`mlops-template`: the instructor's command. One subcommand per question about the teams.

mlops-template check REPO...     how far is each team?      (milestone scores)
mlops-template diff REPO...      what did each team change?  (files against the reference)
mlops-template similar REPO...   who copied from whom?       (code similarity)
mlops-template activity REPO...  who did the work?           (commits and lines per member)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from mlops_template import __version__
from mlops_template import git as git_module
from mlops_template.commands import (
    activity_tables,
    check_tables,
    diff_tables,
    open_entries,
    say,
    similar_tables,
)
from mlops_template.errors import ToolError
from mlops_template.files import COMPARED_BYTES
from mlops_template.reference import References
from mlops_template.tables import clean, markdown, write_report

DESCRIPTION = """\
Instructor tools for course teams' repositories generated from this template.

Each REPO is a team's clone (a folder) or a git URL (cloned into the cache); @FILE reads one
REPO per line from FILE (a line is a location, never an option; blank lines and # comments are
skipped). For check, diff and similar, the reference project is rendered from the instructor's
template (--template) with the answers in the team's .cruft.json, at the template commit it
records, and the team's repository is compared with it. Team repositories are untrusted input:
nothing in them is run, rendered or followed (see docs/instructors.md, Security). Tables go to
--output as CSV, Markdown and HTML; the summary is printed too.
"""
EPILOG = """\
examples:
  mlops-template check teams/*          # how far is each team?
  mlops-template diff teams/team-a      # what did team A change?
  mlops-template similar @teams.txt     # who copied? (a file with one REPO per line)
  mlops-template check --template https://github.com/org/mlops-template.git teams/*
  mlops-template activity https://github.com/org/team-a.git

exit status: 0 when every repository was processed, 1 when one or more could not be (each
is named on one line), 2 for a usage error.
"""
COMMANDS = {
    "check": (
        "how far is each team: the reference's milestone checker, one row per team",
        "Runs the milestone checker of the reference render (never the team's own copy) on "
        "each repository and writes check.csv (one row per team: score per milestone, total, "
        "milestones done, first missing deliverables), check-deliverables.csv, check.md and "
        "check.html. Static checks only, unless --run.",
    ),
    "diff": (
        "what did each team change: missing, modified, added, renamed files; extension score",
        "Compares each team's source files with its reference render (reference -> team) and "
        "writes diff.csv (one row per team), diff-files.csv (every changed file), diff.md and "
        "diff.html.",
    ),
    "similar": (
        "who copied: code similarity across teams, template code excluded",
        "Compares the teams' code with each other using copydetect, with every reference "
        "render as boilerplate so template code never matches; writes similar.csv (team "
        "pairs), similar-files.csv (file pairs), similar.md and similar.html.",
    ),
    "activity": (
        "who did the work: commits and lines per member of each team",
        "Counts each author's non-merge commits and the lines they added and removed in "
        "source files, and writes activity.csv, activity.md and activity.html.",
    ),
}


def plural(count: int) -> str:
    return f"{count} repositor{'y' if count == 1 else 'ies'}"


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlops-template"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("repos", nargs="+", metavar="REPO", help="a team's clone or git URL")
    common.add_argument(
        "-o", "--output", type=Path, default=Path("instructor-reports"), metavar="DIR",
        help="folder for the tables (default: ./instructor-reports)",
    )  # fmt: skip
    common.add_argument(
        "--cache", type=Path, default=default_cache(), metavar="DIR",
        help="clones and reference renders, reused between runs (default: %(default)s)",
    )  # fmt: skip
    common.add_argument(
        "--timeout", type=float, default=git_module.TIMEOUT, metavar="SECONDS",
        help="longest a clone, a git call, a render or the checker may take for one repository "
        "(default: %(default)g; check --run: at least an hour)",
    )  # fmt: skip
    reference = argparse.ArgumentParser(add_help=False)
    reference.add_argument(
        "--template", metavar="SOURCE",
        help="the template: a clone or a git URL (default: the clone this command runs from, "
        "else the source it was installed from; never the one a .cruft.json names)",
    )  # fmt: skip
    reference.add_argument(
        "--exact-commit", action="store_true",
        help="a recorded template commit that the template's history lacks is an error "
        "(default: a warning, and the template's current files are used)",
    )  # fmt: skip
    ignore = argparse.ArgumentParser(add_help=False)
    ignore.add_argument(
        "--ignore", action="append", default=[], metavar="GLOB",
        help="also leave out these paths (a glob, or a folder), e.g. --ignore 'notebooks/'",
    )  # fmt: skip
    ignore.add_argument(
        "--max-file-size", type=float, default=COMPARED_BYTES / 1e6, metavar="MB",
        help="a team file larger than this is listed as not read (default: %(default)g MB)",
    )  # fmt: skip

    parser = argparse.ArgumentParser(
        prog="mlops-template", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parents = {
        "check": [common, reference],
        "diff": [common, reference, ignore],
        "similar": [common, reference, ignore],
        "activity": [common],
    }
    sub = {}
    for name, (summary, description) in COMMANDS.items():
        sub[name] = commands.add_parser(
            name, parents=parents[name], help=summary, description=description,
        )  # fmt: skip
    sub["check"].add_argument(
        "--run", action="store_true",
        help="also run the checks that execute the team's code (its tests and linters, from "
        "its .venv); slow, and only for repositories you trust",
    )  # fmt: skip
    sub["similar"].add_argument(
        "--threshold", type=float, default=0.5, metavar="SHARE",
        help="report a file pair when shared code covers this share of either file's own code "
        "(default: %(default)s)",
    )  # fmt: skip
    sub["similar"].add_argument(
        "--min-overlap", type=int, default=100, metavar="TOKENS",
        help="and at least this many shared tokens (default: %(default)s)",
    )  # fmt: skip
    sub["activity"].add_argument("--since", metavar="DATE", help="only commits since DATE")
    return parser


def locations(repos: list[str]) -> list[str]:
    """The repositories given: each argument, or the lines of the file after an `@`."""
    found = []
    for repo in repos:
        if not repo.startswith("@"):
            found.append(repo)
            continue
        try:
            text = Path(repo[1:]).read_text(encoding="utf-8")
        except OSError as error:
            raise ToolError(f"cannot read {repo[1:]}: {error.strerror or error}") from None
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                found.append(line)  # a location, even if it looks like an option
    return found


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "similar" and not 0 < args.threshold <= 1:
        say("error: --threshold must be a share between 0 and 1, e.g. 0.5")
        return 2
    if args.timeout <= 0 or getattr(args, "max_file_size", 1) <= 0:
        say("error: --timeout and --max-file-size must be more than 0")
        return 2
    git_module.TIMEOUT = args.timeout
    limit = int(getattr(args, "max_file_size", COMPARED_BYTES / 1e6) * 1e6)
    try:
        args.repos = locations(args.repos)
    except ToolError as error:
        say(f"error: {error}")
        return 2
    cache, output = args.cache.expanduser().resolve(), args.output.expanduser().resolve()
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        say(f"error: cannot create the output folder {output}: {error.strerror or error}")
        return 2
    with tempfile.TemporaryDirectory(prefix="mlops-template-") as scratch:
        references = None
        if args.command != "activity":
            try:
                references = References(cache, Path(scratch), args.template, args.exact_commit)
            except ToolError as error:
                say(f"error: {error}")
                return 2
            say(f"{args.command}: {plural(len(args.repos))}; each reference renders in "
                "about 2 s (cached afterwards)")  # fmt: skip
        entries = open_entries(args.repos, cache, references)
        if args.command == "check":
            tables = check_tables(entries, output, args.run)
        elif args.command == "diff":
            tables = diff_tables(entries, args.ignore, limit)
        elif args.command == "similar":
            tables = similar_tables(entries, args.ignore, args.threshold, args.min_overlap, limit)
        else:
            tables = activity_tables(entries, args.since)
    warnings = [
        f"{e.name}: {e.reference.warning}" for e in entries if e.reference and e.reference.warning
    ]
    title = f"mlops-template {args.command}: {plural(len(entries))}"
    try:
        written = write_report(output, args.command, title, tables, warnings)
    except OSError as error:
        say(f"error: cannot write the tables into {output}: {error.strerror or error}")
        return 2
    print(clean(markdown(title, tables[:1], warnings)))
    say("wrote " + ", ".join(str(path) for path in written))
    return 1 if any(e.error for e in entries) else 0


if __name__ == "__main__":
    sys.exit(main())
