"""`make data-new CSV=<file> TARGET=<column>`: plug a team's own CSV file into the project.

Checks the file first, and changes nothing when it cannot be used: it must be a readable,
comma-separated UTF-8 file with rows, the target must be one of its columns, hold two classes or
more, and allow a stratified split (see features.check_splittable). Then:

1. copies the file to data/external/ and versions it with `dvc add` (commit the .dvc file);
2. rewrites the `data` section of params.yaml: the file, the target, and the kind of every other
   column (numeric, category, text or ignore), guessed from its values for you to review;
3. runs the `data` stage (`dvc repro data`), and writes the validation suite from its output,
   data/raw/dataset.csv, so the suite's column names are the pipeline's;
4. prints what to review before `make pipeline`.

Column names become lowercase identifiers ("Mean Radius" -> mean_radius), as the `data` stage
makes them; TARGET may be given either way.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
import yaml

from .config import (
    EXPECTATION_SUITE,
    EXTERNAL_DATA_DIR,
    PARAMS_FILE,
    PROJ_ROOT,
    RAW_DATASET,
    display_path,
)
from .dataset import DataError, clean_columns, clean_name, read_csv_file
from .errors import PipelineError, reported
from .features import check_splittable
from .params import ColumnKind, load_params
from .suite import DEFAULT_MARGIN, suite_document, suite_text
from .validation import read_data

app = typer.Typer(add_completion=False, help=__doc__)

# A string column with at most FEW_CATEGORIES distinct values is a category; one with up to
# MAX_CATEGORIES (at most one per two rows) too, unless its values average TEXT_WORDS words or
# more: then it is free text, as is any other column of such values. The rest (codes, ids,
# names) is ignored.
FEW_CATEGORIES = 10
MAX_CATEGORIES = 50
TEXT_WORDS = 3


class NewDataError(PipelineError):
    """The file cannot become the project's data; nothing was changed."""


def guess_kind(series: pd.Series) -> ColumnKind:
    """A first guess at a column's kind, for the team to review in params.yaml."""
    values = series.dropna()
    if pd.api.types.is_bool_dtype(series):
        return "category"
    if pd.api.types.is_numeric_dtype(series):
        is_counter = (
            pd.api.types.is_integer_dtype(series)
            and values.is_unique
            and len(values) > MAX_CATEGORIES
            and values.is_monotonic_increasing
        )
        return "ignore" if is_counter else "numeric"  # 1, 2, 3...: a row number, an id
    distinct = values.nunique()
    words = values.astype(str).str.split().str.len().mean()
    few = distinct <= MAX_CATEGORIES and distinct <= len(values) / 2
    if distinct <= FEW_CATEGORIES or (few and words < TEXT_WORDS):
        return "category"
    return "text" if words >= TEXT_WORDS else "ignore"  # unique codes: ids, names, tickets


def data_section(csv: str, target: str, kinds: dict[str, ColumnKind], source: str) -> str:
    """params.yaml's `data` section for a CSV file, with its comments."""
    columns = yaml.safe_dump(kinds, sort_keys=False, allow_unicode=True).strip()
    listed = "\n".join(f"    {line}" for line in columns.splitlines()) if kinds else "    {}"
    return (
        "data:\n"
        f"  # Written by `make data-new` from {source}: review the column kinds below.\n"
        "  # builtin: the built-in data (builtin_data.py); csv: the file or http(s) URL in `csv`.\n"
        "  source: csv\n"
        f"  csv: {yaml.safe_dump(csv).splitlines()[0]}\n"
        f"  target: {yaml.safe_dump(target).splitlines()[0]}\n"
        "  # Binary targets only (null otherwise): the class the `positive_*` metrics and the ROC\n"
        "  # and precision-recall curves call positive.\n"
        "  positive_label: null\n"
        "  # The kind of each input column: numeric, category (one-hot encoded), text (TF-IDF) or\n"
        "  # ignore (kept out of the model). A column not listed is numeric.\n"
        f"  columns:\n{listed}\n"
        "  # `validate` stops when a single column predicts the target almost perfectly, the mark\n"
        "  # of label leakage (docs/your-data.md). List a column here only once you know why.\n"
        "  allow_leaky_features: []\n"
    )


def replace_section(text: str, name: str, section: str) -> str:
    """`text` (a YAML file) with its top-level section `name` replaced by `section`."""
    lines = text.splitlines(keepends=True)
    try:
        start = lines.index(f"{name}:\n")
    except ValueError:
        raise NewDataError(f"{PARAMS_FILE.name} has no `{name}:` section to rewrite") from None
    end = start + 1
    while end < len(lines) and (lines[end].startswith((" ", "#")) or not lines[end].strip()):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # keep the blank lines before the next section
    return "".join(lines[:start]) + section + "".join(lines[end:])


def dvc(*arguments: str) -> None:
    """Run a DVC command in the project; NewDataError with its last line if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *arguments], cwd=PROJ_ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise NewDataError(f"`dvc {' '.join(arguments)}` failed: {lines[-1] if lines else ''}")


def plug_in(csv: Path, target: str, params_file: Path = PARAMS_FILE) -> dict[str, ColumnKind]:
    """Check `csv`, then make it the project's data (see the module's text); the column kinds."""
    if not csv.is_file():
        raise NewDataError(f"{csv} is not a file")
    if csv.suffix.lower() != ".csv":
        raise NewDataError(f"{csv} is not a .csv file: export it as comma-separated values")
    try:
        frame = clean_columns(read_csv_file(csv, str(csv)), str(csv))
    except DataError as error:
        raise NewDataError(str(error)) from None
    column = clean_name(target)
    if column not in frame.columns:
        shown = ", ".join(frame.columns[:12]) + (", ..." if len(frame.columns) > 12 else "")
        raise NewDataError(f"TARGET={target}: {csv.name} has no such column (it has {shown})")
    params = load_params(params_file)
    check_splittable(frame.drop_duplicates(), column, params.features)
    kinds = {name: guess_kind(frame[name]) for name in frame.columns if name != column}
    if all(kind == "ignore" for kind in kinds.values()):
        raise NewDataError(f"{csv.name} has no column the model could learn from besides {column}")

    stored = EXTERNAL_DATA_DIR / f"{clean_name(csv.stem)}.csv"
    old_params = params_file.read_text(encoding="utf-8")
    section = data_section(display_path(stored), column, kinds, csv.name)
    params_file.write_text(replace_section(old_params, "data", section), encoding="utf-8")
    try:
        load_params(params_file)  # e.g. a gate that needs a positive label this data lacks
        if stored.resolve() != csv.resolve():
            stored.parent.mkdir(parents=True, exist_ok=True)
            stored.unlink(missing_ok=True)
            shutil.copyfile(csv, stored)
        dvc("add", "--quiet", display_path(stored))
        dvc("repro", "--quiet", "data")
    except PipelineError:
        params_file.write_text(old_params, encoding="utf-8")
        raise
    suite = suite_document(read_data(RAW_DATASET), column, kinds, DEFAULT_MARGIN, "dataset.csv")
    EXPECTATION_SUITE.write_text(suite_text(suite), encoding="utf-8")
    return kinds


@app.command()
def main(
    csv: Annotated[Path, typer.Argument(help="The team's CSV file")],
    target: Annotated[str, typer.Option(help="The column to predict")],
) -> None:
    """Make CSV the project's data, with TARGET as the label."""
    with reported("data-new"):
        kinds = plug_in(csv, target)
    counts = {
        kind: sum(k == kind for k in kinds.values()) for kind in dict.fromkeys(kinds.values())
    }
    typer.echo(
        f"data-new: {csv.name} is the project's data: "
        + ", ".join(f"{count} {kind}" for kind, count in counts.items())
        + " columns"
    )
    suite = display_path(EXPECTATION_SUITE)
    typer.echo(
        "Review before `make pipeline`:\n"
        "  - params.yaml, `data`: each column's kind (guessed), and positive_label for a binary\n"
        "    target; `gate`: the minimum of each metric for this problem\n"
        f"  - {suite}: what valid data is (written from the data as it is now)\n"
        "  - tests: tests/test_default_data.py skips itself on other data; docs/your-data.md says\n"
        "    which tests to adapt\n"
        "Then commit: git add --all && git commit -m 'Use our own data'"
    )


if __name__ == "__main__":
    app()
