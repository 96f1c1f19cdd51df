"""Render the template's options as a Markdown table, from cookiecutter.json alone.

cookiecutter.json is the one source of truth: each option's default and choices, its prompt in
`__prompts__` and its one-line help in the private `_help` dict. The README's options block and the
documentation site's Options page are both generated from it, so they cannot drift apart.

    python tools/options_reference.py                           # print the table
    python tools/options_reference.py --check-readme README.md  # exit 1 if the README is stale
    python tools/options_reference.py --write-readme README.md  # rewrite the README's block
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
COOKIECUTTER_JSON = REPO_ROOT / "cookiecutter.json"
README_START = "<!-- options:start -->"
README_END = "<!-- options:end -->"
# A default such as "{{ cookiecutter.project_name | slugify }}" is computed from another answer.
DERIVED_FROM = re.compile(r"cookiecutter\.([A-Za-z_][A-Za-z0-9_]*)")
HEADER = ("variable", "prompt", "default", "choices", "help")


class OptionsError(ValueError):
    """cookiecutter.json lacks something the options reference needs."""


@dataclass(frozen=True)
class Option:
    """One public cookiecutter variable, with what a user is told about it."""

    name: str
    value: str | bool | list[str]
    prompt: str
    help: str

    @property
    def default(self) -> str:
        """The default as a table cell: a literal, `true`/`false`, or what it is derived from."""
        if isinstance(self.value, bool):
            return f"`{str(self.value).lower()}`"
        if isinstance(self.value, list):
            return f"`{self.value[0]}`"
        sources = DERIVED_FROM.findall(self.value)
        if sources:
            return "derived from " + ", ".join(f"`{source}`" for source in dict.fromkeys(sources))
        return f"`{self.value}`"

    @property
    def choices(self) -> str:
        """The accepted answers as a table cell."""
        if isinstance(self.value, bool):
            return "`true`, `false`"
        if isinstance(self.value, list):
            return ", ".join(f"`{choice}`" for choice in self.value)
        return "text"


def load_options(path: Path | str = COOKIECUTTER_JSON) -> list[Option]:
    """Read the public options of a cookiecutter.json, in file order.

    Raises OptionsError naming every option without a prompt or a `_help` entry, and every prompt
    or help entry whose option does not exist.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise OptionsError(f"cannot read {path}: {error}") from error
    prompts = data.get("__prompts__", {})
    helps = data.get("_help", {})
    names = [name for name in data if not name.startswith("_")]

    problems = []
    for name in names:
        if not _prompt_of(prompts.get(name)):
            problems.append(f"option {name!r} has no prompt in `__prompts__`")
        if not isinstance(helps.get(name), str) or not helps[name].strip():
            problems.append(f"option {name!r} has no one-line help in `_help`")
        if data[name] == []:
            problems.append(f"option {name!r} is a choice list without choices")
    for section, entries in (("__prompts__", prompts), ("_help", helps)):
        stale = [key for key in entries if key not in names]
        problems += [f"`{section}` has an entry for unknown option {key!r}" for key in stale]
    if problems:
        raise OptionsError(f"{path}:\n" + "\n".join(f"  - {problem}" for problem in problems))

    return [
        Option(name=name, value=data[name], prompt=_prompt_of(prompts[name]), help=helps[name])
        for name in names
    ]


def _prompt_of(entry: object) -> str:
    """The question of a `__prompts__` entry: the string itself, or a choice's `__prompt__`."""
    if isinstance(entry, dict):
        entry = entry.get("__prompt__")
    return entry.strip() if isinstance(entry, str) else ""


def _cell(text: str) -> str:
    """Make text safe for one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def options_table(path: Path | str = COOKIECUTTER_JSON) -> str:
    """The Markdown table of every public option in the cookiecutter.json at `path`."""
    rows = [HEADER, tuple("---" for _ in HEADER)]
    for option in load_options(path):
        cells = (f"`{option.name}`", option.prompt, option.default, option.choices, option.help)
        rows.append(tuple(_cell(cell) for cell in cells))
    return "\n".join("| " + " | ".join(row) + " |" for row in rows) + "\n"


def readme_block(text: str) -> str:
    """The text between the README's options markers, without surrounding blank lines."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise OptionsError(f"the README needs a {README_START} line, then a {README_END} line")
    return text[start + len(README_START) : end].strip("\n") + "\n"


def with_readme_block(text: str, table: str) -> str:
    """The README text with the block between the markers replaced by `table`."""
    readme_block(text)  # fails clearly when the markers are missing
    start = text.find(README_START) + len(README_START)
    end = text.find(README_END)
    return text[:start] + "\n" + table.strip("\n") + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cookiecutter-json", type=Path, default=COOKIECUTTER_JSON)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check-readme", type=Path, metavar="README", help="exit 1 if stale")
    mode.add_argument("--write-readme", type=Path, metavar="README", help="rewrite the block")
    args = parser.parse_args(argv)

    try:
        table = options_table(args.cookiecutter_json)
        if args.check_readme:
            if readme_block(args.check_readme.read_text(encoding="utf-8")) != table:
                print(
                    f"{args.check_readme}: the options table between {README_START} and "
                    f"{README_END} differs from {args.cookiecutter_json}; regenerate it with "
                    f"`python tools/options_reference.py --write-readme {args.check_readme}`",
                    file=sys.stderr,
                )
                return 1
        elif args.write_readme:
            text = args.write_readme.read_text(encoding="utf-8")
            args.write_readme.write_text(with_readme_block(text, table), encoding="utf-8")
        else:
            print(table, end="")
    except (OptionsError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
