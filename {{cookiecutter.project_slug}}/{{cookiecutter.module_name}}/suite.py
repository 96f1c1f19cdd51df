"""Write a starting expectation suite from data the team trusts: `python -m <package>.suite`.

The suite (expectations/raw_data.json) is what the `validate` stage checks the raw data against.
This command writes one that the given data meets: the columns in order, the row count within
half to double, few duplicated rows (at most `--duplicates` of the rows, 5 %, or the observed
share if higher), and per column no nulls (or at most the observed share), then by the column's
kind (`data.columns` in params.yaml; a column not listed is numeric): the label's known values;
for a numeric feature, values that read as numbers within the observed range widened by a margin;
for a category, the values seen; for a text, lengths up to the longest seen plus the margin,
no blank texts and few repeated ones. Review it, then edit it by hand as you learn what valid
data looks like.

The file is Great Expectations' native suite format, written with one expectation per line, so
`git diff expectations/` shows each changed expectation as one line. Running this again
overwrites the file, hand edits included. It is not a pipeline stage and needs no GE import.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from .config import EXPECTATION_SUITE, PARAMS_FILE, RAW_DATASET, display_path
from .errors import PipelineError, reported
from .params import load_params
from .validation import read_data

app = typer.Typer(add_completion=False, help=__doc__)

SUITE_NAME = "raw_data"
DEFAULT_MARGIN = 0.1
# Share of rows that may have an identical twin (GE counts every copy): a file appended to itself
# or a join that repeats rows goes far beyond it; a few true repeats stay below.
DEFAULT_DUPLICATES = 0.05
# A number as pandas writes it to CSV (12, -0.5, 1e-05, 12.0: one null makes an int column float).
# A text of spaces only: an empty message that pandas does not read as missing.
BLANK_PATTERN = r"^\s*$"
# GE matches each value's text, so when a stray "abc" makes pandas read a column as text, exactly
# the values that are not numbers fail, and those are the values a failure shows.
NUMBER_PATTERN = r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$"


class SuiteError(PipelineError):
    """A suite cannot be written from this data."""


def widened_range(low: float, high: float, margin: float, integer: bool) -> tuple[float, float]:
    """[low, high] widened by margin x (high - low) on each side, rounded outward to the leading
    digit of that widening (e.g. 6.98..28.11 with 0.1 -> 4..31), never below 0 for data that is
    never negative."""
    padding = margin * ((high - low) or abs(high) or 1.0)
    lower, upper = low, high
    if padding > 0:
        exponent = math.floor(math.log10(padding))
        step = max(10.0**exponent, 1.0) if integer else 10.0**exponent
        digits = max(0, -exponent)
        lower = round(math.floor((low - padding) / step) * step, digits)
        upper = round(math.ceil((high + padding) / step) * step, digits)
        if low >= 0:
            lower = max(lower, 0.0)
    if integer:
        return int(lower), int(upper)
    return float(lower), float(upper)


def not_null_kwargs(series: pd.Series) -> dict[str, Any]:
    """No nulls if the data has none; otherwise at least the observed share of values (rounded
    down to a percent), so the suite passes on the data it was built from."""
    nulls = int(series.isna().sum())
    if not nulls:
        return {"column": series.name}
    return {"column": series.name, "mostly": math.floor(100 * (1 - nulls / len(series))) / 100}


def unique_share(repeated: pd.Series, duplicates: float) -> float:
    """The `mostly` of a uniqueness expectation: 1 - `duplicates`, or the share of values that are
    unique (`repeated` marks every copy, rounded down to a percent) when the data has more."""
    unique = 1 - float(repeated.mean()) if len(repeated) else 1.0
    return min(round(1 - duplicates, 4), math.floor(100 * unique) / 100)


def unique_rows_kwargs(frame: pd.DataFrame, duplicates: float) -> dict[str, Any]:
    """Every column together unique in at least the share `unique_share` gives."""
    mostly = unique_share(frame.duplicated(keep=False), duplicates)
    return {"column_list": [str(name) for name in frame.columns], "mostly": mostly}


def text_expectations(series: pd.Series, margin: float, duplicates: float) -> list[dict[str, Any]]:
    """A text column's: lengths from 1 (when no text is empty) to the longest seen plus the
    margin; no blank texts (or at most the observed share); few repeated texts, by the rule of
    repeated rows (the same text under two labels is a repeat that the row rule misses)."""
    texts = series.dropna().astype(str)
    name = series.name
    blank = texts.str.contains(BLANK_PATTERN)
    no_blanks: dict[str, Any] = {"column": name, "regex": BLANK_PATTERN}
    if blank.any():
        no_blanks["mostly"] = math.floor(100 * (1 - blank.mean())) / 100
    lengths = {
        "column": name,
        "min_value": 0 if (texts.str.len() == 0).any() else 1,
        "max_value": math.ceil(int(texts.str.len().max()) * (1 + margin)),
    }
    unique = {"column": name, "mostly": unique_share(texts.duplicated(keep=False), duplicates)}
    return [
        {"type": "expect_column_value_lengths_to_be_between", "kwargs": lengths},
        {"type": "expect_column_values_to_not_match_regex", "kwargs": no_blanks},
        {"type": "expect_column_values_to_be_unique", "kwargs": unique},
    ]


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def expectations_for(
    frame: pd.DataFrame,
    target: str,
    kinds: Mapping[str, str],
    margin: float,
    duplicates: float = DEFAULT_DUPLICATES,
) -> list[dict[str, Any]]:
    """The expectations (GE's native format) that `frame` meets, table first, then by column
    (of the kind `kinds` gives it, numeric when not given)."""
    rows = len(frame)
    expectations: list[dict[str, Any]] = [
        {
            "type": "expect_table_columns_to_match_ordered_list",
            "kwargs": {"column_list": [str(name) for name in frame.columns]},
        },
        # Half to double the reference size: wide enough for a new export of the same source,
        # narrow enough to catch a truncated file or one appended twice.
        {
            "type": "expect_table_row_count_to_be_between",
            "kwargs": {"min_value": max(1, rows // 2), "max_value": 2 * rows},
        },
        # Rows repeated whole: one export appended to another, a join that multiplies rows.
        {
            "type": "expect_compound_columns_to_be_unique",
            "kwargs": unique_rows_kwargs(frame, duplicates),
        },
    ]
    for name in frame.columns:
        series = frame[name]
        expectations.append(
            {"type": "expect_column_values_to_not_be_null", "kwargs": not_null_kwargs(series)}
        )
        kind = kinds.get(name, "numeric")
        if name == target or kind == "category":
            values = sorted(series.dropna().unique().tolist(), key=str)
            expectations.append(
                {
                    "type": "expect_column_values_to_be_in_set",
                    "kwargs": {"column": name, "value_set": values},
                }
            )
        elif kind == "text" and series.notna().any():
            expectations += text_expectations(series, margin, duplicates)
        elif kind == "numeric" and is_numeric(series) and series.notna().any():
            # Not a type check: on a column read as text, GE's type check fails every value.
            expectations.append(
                {
                    "type": "expect_column_values_to_match_regex",
                    "kwargs": {"column": name, "regex": NUMBER_PATTERN},
                }
            )
            low, high = widened_range(
                float(series.min()),
                float(series.max()),
                margin,
                integer=pd.api.types.is_integer_dtype(series),
            )
            expectations.append(
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": name, "min_value": low, "max_value": high},
                }
            )
        # ---- TEAM: expectations for your own columns (a pattern, a date format). ----
    return expectations


def suite_document(
    frame: pd.DataFrame,
    target: str,
    kinds: Mapping[str, str],
    margin: float,
    source: str,
    duplicates: float = DEFAULT_DUPLICATES,
) -> dict[str, Any]:
    """A complete suite in GE's native format, without ids so that the same data gives the same
    file."""
    if target not in frame.columns:
        raise SuiteError(f"the label column {target!r} (data.target) is not in {source}")
    if margin < 0:
        raise SuiteError(f"the margin must be 0 or more, not {margin}")
    if not 0 <= duplicates < 1:
        raise SuiteError(f"the share of duplicated rows must be at least 0, below 1: {duplicates}")
    return {
        "name": SUITE_NAME,
        "expectations": expectations_for(frame, target, kinds, margin, duplicates),
        "meta": {
            "generated_from": {
                "data": source,
                "rows": len(frame),
                "margin": margin,
                "duplicates": duplicates,
            }
        },
        "notes": "Written by the `suite` command from data the team trusts. Review it and edit it "
        "by hand as you learn what valid data looks like (see expectations/README.md).",
    }


def suite_text(document: dict[str, Any]) -> str:
    """The suite as JSON with one expectation per line and the rest indented as usual."""
    fields = []
    for key, value in document.items():
        if key == "expectations" and value:
            lines = ",\n".join(f"    {json.dumps(item, ensure_ascii=False)}" for item in value)
            text = f"[\n{lines}\n  ]"
        else:
            text = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        fields.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(fields) + "\n}\n"


@app.command()
def main(
    input_path: Path = RAW_DATASET,
    output_path: Path = EXPECTATION_SUITE,
    margin: Annotated[
        float, typer.Option(help="How far past the observed range a value may go, as a share of it")
    ] = DEFAULT_MARGIN,
    duplicates: Annotated[
        float, typer.Option(help="Share of rows that may have an identical twin (each copy counts)")
    ] = DEFAULT_DUPLICATES,
    params_file: Path = PARAMS_FILE,
) -> None:
    """Write a suite that the data in INPUT_PATH meets to OUTPUT_PATH (overwriting it)."""
    with reported("suite"):
        data = load_params(params_file).data
        frame = read_data(input_path)
        document = suite_document(
            frame, data.target, data.columns, margin, display_path(input_path), duplicates
        )
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text(suite_text(document), encoding="utf-8")
    typer.echo(
        f"suite: {len(document['expectations'])} expectations from {display_path(input_path)} "
        f"({len(frame)} rows) -> {display_path(output_path)}; review it before committing"
    )


if __name__ == "__main__":
    app()
