"""Write a starting expectation suite from data the team trusts: `python -m <package>.suite`.

expectations/raw_data.json, which the `validate` stage checks, is written so that the given data
meets it: the columns in order, half to double the rows, few duplicated rows, few nulls, and per
column by its kind (`data.columns`; numeric when not listed): the label's and a category's values,
a number's widened range, a text's lengths, no blank and few repeated texts; for pictures (an
`image` column of a manifest) each file listed once and readable, its size and mode, few copies
of the same file (by sha256) and the classes' balance. Review it, then edit
it by hand (running this again overwrites it). One expectation per line, so `git diff` shows each
changed one as one line. No GE import: it only writes GE's native JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from pandas.api.types import is_bool_dtype, is_integer_dtype, is_numeric_dtype

from .config import EXPECTATION_SUITE, PARAMS_FILE, RAW_DATASET, display_path
from .errors import PipelineError, reported
from .params import load_params
from .validation import read_data

app = typer.Typer(add_completion=False, help=__doc__)

DEFAULT_MARGIN = 0.1
# Share of rows that may have an identical twin (GE counts every copy): a file appended to itself
# or a join that repeats rows goes far beyond it; a few true repeats stay below.
DEFAULT_DUPLICATES = 0.05
# A text of spaces only: an empty message that pandas does not read as missing.
BLANK_PATTERN = r"^\s*$"
# How far the labels' shares may drift from the suite's (Kullback-Leibler divergence): a tenth of
# the pictures of one digit of ten missing is 0.01; a class left out entirely fails.
BALANCE_DIVERGENCE = 0.1
# A number as pandas writes it to CSV (12, -0.5, 1e-05, 12.0: one null makes an int column float).
# Not GE's type check: when a stray "abc" makes pandas read a column as text, that fails every
# value; this pattern fails exactly the values that are not numbers, and a failure shows them.
NUMBER_PATTERN = r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$"


class SuiteError(PipelineError):
    """A suite cannot be written from this data."""


def widened_range(low: float, high: float, margin: float, integer: bool) -> tuple[float, float]:
    """[low, high] widened by margin x (high - low) on each side, rounded outward to the leading
    digit of that widening (6.98..28.11 with 0.1 -> 4..31), not below 0 for non-negative data."""
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
    number = int if integer else float
    return number(lower), number(upper)


def share_floor(share: float) -> float:
    """A share rounded down to a percent: a `mostly` the data it was computed on still meets."""
    return math.floor(100 * share) / 100


def unique_share(repeated: pd.Series, duplicates: float) -> float:
    """1 - `duplicates`, or the share of unique values (`repeated` marks every copy) if lower."""
    unique = 1 - float(repeated.mean()) if len(repeated) else 1.0
    return min(round(1 - duplicates, 4), share_floor(unique))


def expectation(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": f"expect_{kind}", "kwargs": kwargs}


def column_expectations(
    series: pd.Series, kind: str, margin: float, duplicates: float
) -> list[dict[str, Any]]:
    """No nulls (or at most the observed share), then the checks of the column's kind."""
    name, values, nulls = series.name, series.dropna(), int(series.isna().sum())
    mostly = {"mostly": share_floor(1 - nulls / len(series))} if nulls else {}
    found = [expectation("column_values_to_not_be_null", column=name, **mostly)]
    if kind in ("label", "category"):
        value_set = sorted(values.unique().tolist(), key=str)
        found.append(expectation("column_values_to_be_in_set", column=name, value_set=value_set))
    elif kind == "text" and len(values):
        # The same text under two labels is a repeat that the rule of whole rows misses.
        texts = values.astype(str)
        lengths = texts.str.len()
        blank = texts.str.contains(BLANK_PATTERN)
        blanks = {"mostly": share_floor(1 - blank.mean())} if blank.any() else {}
        found += [
            expectation(
                "column_value_lengths_to_be_between",
                column=name,
                min_value=0 if (lengths == 0).any() else 1,
                max_value=math.ceil(int(lengths.max()) * (1 + margin)),
            ),
            expectation(
                "column_values_to_not_match_regex", column=name, regex=BLANK_PATTERN, **blanks
            ),
            expectation(
                "column_values_to_be_unique",
                column=name,
                mostly=unique_share(texts.duplicated(keep=False), duplicates),
            ),
        ]
    elif (
        kind == "numeric" and len(values) and is_numeric_dtype(series) and not is_bool_dtype(series)
    ):
        low, high = widened_range(
            float(values.min()), float(values.max()), margin, is_integer_dtype(series)
        )
        found += [
            expectation("column_values_to_match_regex", column=name, regex=NUMBER_PATTERN),
            expectation("column_values_to_be_between", column=name, min_value=low, max_value=high),
        ]
    elif kind == "image":  # a manifest lists each file once
        found.append(expectation("column_values_to_be_unique", column=name))
    # ---- TEAM: expectations for your own columns (a pattern, a date format). ----
    return found


def picture_expectations(
    frame: pd.DataFrame, target: str, margin: float, duplicates: float
) -> list[dict[str, Any]]:
    """What a manifest's columns (builtin_data.manifest) must show: every file decodes, sizes
    within the observed range widened, the observed modes, few copies of one file under two
    names, and each label's share close to today's."""
    missing = sorted({"readable", "width", "height", "mode", "sha256"} - set(frame.columns))
    if missing:
        raise SuiteError(f"the data has an image column but not the manifest's {missing}")
    found = [expectation("column_values_to_be_in_set", column="readable", value_set=[True])]
    for name in ("width", "height"):
        low, high = widened_range(
            float(frame[name].min()), float(frame[name].max()), margin, integer=True
        )
        found.append(
            expectation(
                "column_values_to_be_between", column=name, min_value=max(low, 1), max_value=high
            )
        )
    modes = sorted(frame["mode"].dropna().astype(str).unique())
    copies = unique_share(frame["sha256"].duplicated(keep=False), duplicates)
    shares = frame[target].value_counts(normalize=True).sort_index(key=lambda i: i.astype(str))
    weights = [round(float(share), 6) for share in shares]
    weights[weights.index(max(weights))] += round(1 - sum(weights), 6)  # GE wants a sum of 1
    partition = {"values": shares.index.tolist(), "weights": weights}
    return [
        *found,
        expectation("column_values_to_be_in_set", column="mode", value_set=modes),
        expectation("column_values_to_be_unique", column="sha256", mostly=copies),
        expectation(
            "column_kl_divergence_to_be_less_than",
            column=target,
            partition_object=partition,
            threshold=BALANCE_DIVERGENCE,
        ),
    ]


def suite_document(
    frame: pd.DataFrame,
    target: str,
    kinds: Mapping[str, str],
    margin: float,
    source: str,
    duplicates: float = DEFAULT_DUPLICATES,
) -> dict[str, Any]:
    """A suite that `frame` meets, in GE's native format, without ids (same data, same file)."""
    if target not in frame.columns:
        raise SuiteError(f"the label column {target!r} (data.target) is not in {source}")
    if margin < 0:
        raise SuiteError(f"the margin must be 0 or more, not {margin}")
    if not 0 <= duplicates < 1:
        raise SuiteError(f"the share of duplicated rows must be at least 0, below 1: {duplicates}")
    columns, rows = [str(name) for name in frame.columns], len(frame)
    repeated = unique_share(frame.duplicated(keep=False), duplicates)
    expectations = [
        expectation("table_columns_to_match_ordered_list", column_list=columns),
        # Wide enough for a new export of the same source, narrow enough for a truncated file.
        expectation(
            "table_row_count_to_be_between", min_value=max(1, rows // 2), max_value=2 * rows
        ),
        # Rows repeated whole: one export appended to another, a join that multiplies rows.
        expectation("compound_columns_to_be_unique", column_list=columns, mostly=repeated),
    ]
    for name in frame.columns:
        kind = "label" if name == target else kinds.get(name, "numeric")
        expectations += column_expectations(frame[name], kind, margin, duplicates)
    if "image" in kinds.values():
        expectations += picture_expectations(frame, target, margin, duplicates)
    generated = {"data": source, "rows": rows, "margin": margin, "duplicates": duplicates}
    return {
        "name": "raw_data",
        "expectations": expectations,
        "meta": {"generated_from": generated},
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
