"""Write a command's tables as CSV (one file per table), Markdown and HTML (all tables).

Each command writes `<command>.csv` (its summary, one row per team or pair), further CSV files
for its exact lists, and `<command>.md` and `<command>.html` holding every table. The HTML page
is self-contained (inline style), so it opens offline and can be attached to an email.

Cells hold text from the teams (paths, author names, messages): every cell loses its control
characters (an escape sequence would recolour or rewrite the instructor's terminal), HTML escapes
it, and a CSV cell that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`,
a tab or a carriage return) gets a leading `'`.
"""

from __future__ import annotations

import csv
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

# Control characters, but the newline of a multi-line cell; and what starts a formula.
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
    "th{background:#f0f0f0}tr:nth-child(even) td{background:#fafafa}"
    ".note{color:#555}.warning{color:#a40}"
)


@dataclass
class Table:
    """A titled table; `csv_name` is the file its rows go to, `note` says how to read it."""

    title: str
    csv_name: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    note: str = ""


def clean(text: str) -> str:
    """`text` without control characters (newlines kept)."""
    return CONTROL.sub("", text)


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return clean(str(value))


def csv_cell(value) -> str:
    """A cell as the CSV files hold it: text never starts a formula for a spreadsheet to run
    (numbers, negative ones included, stay numbers)."""
    text = cell(value)
    if isinstance(value, str) and (
        value.startswith(FORMULA_START) or text.startswith(FORMULA_START)
    ):
        return "'" + text
    return text


def markdown(title: str, tables: list[Table], warnings: list[str]) -> str:
    lines = [f"# {title}", ""]
    lines += [f"- warning: {clean(warning)}" for warning in warnings] + ([""] if warnings else [])
    for table in tables:
        lines += [f"## {table.title}", ""]
        lines += [table.note, ""] if table.note else []
        if not table.rows:
            lines += ["(none)", ""]
            continue
        lines.append("| " + " | ".join(table.columns) + " |")
        lines.append("|" + "---|" * len(table.columns))
        for row in table.rows:
            cells = [cell(v).replace("|", "\\|").replace("\n", "<br>") for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def html_page(title: str, tables: list[Table], warnings: list[str]) -> str:
    escape = html.escape
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}"
        f"</title><style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
    ]
    parts += [f"<p class='warning'>warning: {escape(clean(w))}</p>" for w in warnings]
    for table in tables:
        parts.append(f"<h2>{escape(table.title)}</h2>")
        if table.note:
            parts.append(f"<p class='note'>{escape(table.note)}</p>")
        if not table.rows:
            parts.append("<p>(none)</p>")
            continue
        header = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(cell(v))}</td>" for v in row) + "</tr>"
            for row in table.rows
        )
        parts.append(f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    output: Path, name: str, title: str, tables: list[Table], warnings: list[str]
) -> list[Path]:
    """Write every table of a command into `output`; return the files written."""
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        path = output / table.csv_name
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(table.columns)
            writer.writerows([csv_cell(v) for v in row] for row in table.rows)
        written.append(path)
    for suffix, render in ((".md", markdown), (".html", html_page)):
        path = output / f"{name}{suffix}"
        path.write_text(render(title, tables, warnings) + "\n", encoding="utf-8")
        written.append(path)
    return written
