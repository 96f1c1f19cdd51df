"""MkDocs hook: put the options table, generated from cookiecutter.json, into the Options page.

`mkdocs.yml` lists this file under `hooks:`. The page `options.md` holds the marker line
`<!-- options-table -->`; the table replaces it at build time, so cookiecutter.json stays the one
source of truth for the options.
"""

from __future__ import annotations

from typing import Any

# MkDocs puts this file's folder on sys.path while it loads a hook, so the sibling module imports.
from options_reference import options_table

MARKER = "<!-- options-table -->"
OPTIONS_PAGE = "options.md"


def on_page_markdown(markdown: str, page: Any, **_kwargs: Any) -> str:
    """Replace the marker line of the Options page with the generated table."""
    if page.file.src_uri != OPTIONS_PAGE:
        return markdown
    lines = markdown.splitlines()
    if MARKER not in (line.strip() for line in lines):
        raise ValueError(f"{OPTIONS_PAGE} must contain the marker line {MARKER}")
    table = options_table().rstrip("\n")
    return "\n".join(table if line.strip() == MARKER else line for line in lines) + "\n"
