"""`make data-new CSV=<file> TARGET=<column>`: plug a team's own CSV file into the project (or,
for pictures, `make data-new FOLDER=<folder>`: one folder per label, named for it).

It checks the data and changes nothing when it cannot be used; then it versions a copy with DVC,
rewrites the `data` section of params.yaml (guessing each column's kind), runs the `data` stage
and writes the validation suite from its output (docs/your-data.md says what to review).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from textwrap import indent
from typing import Annotated

import pandas as pd
import typer
import yaml

from . import builtin_data
from .config import (
    EXPECTATION_SUITE,
    EXTERNAL_DATA_DIR,
    PARAMS_FILE,
    PROJ_ROOT,
    RAW_DATASET,
    display_path,
)
from .dataset import clean_columns, clean_name, read_csv_file
from .errors import PipelineError, reported
from .features import check_splittable
from .params import ColumnKind, DataParams, load_params
from .suite import DEFAULT_MARGIN, suite_document, suite_text
from .validation import read_data

app = typer.Typer(add_completion=False, help=__doc__)

# How guess_kind tells a category from a text or an id (docs/your-data.md, "The guess").
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


def data_section(data: DataParams, source: str) -> str:
    """params.yaml's `data` section, each key under its description from params.py."""
    lines = [
        f"data:\n  # Written by `make data-new` from {source}: review the column kinds (numeric,\n"
        "  # category, text or ignore) and positive_label; see docs/your-data.md.\n"
    ]
    unused = {"folder"} if data.source != "folder" else {"csv"}  # one of the two locations
    for key, value in data.model_dump(exclude=unused).items():
        description = DataParams.model_fields[key].description
        lines.append(f"  # {description}\n" if description else "")
        lines.append(
            indent(yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True), "  ")
        )
    return "".join(lines)


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
    """Check `csv`, then make it the project's data; return the guessed column kinds."""
    if not csv.is_file():
        raise NewDataError(f"{csv} is not a file")
    if csv.suffix.lower() != ".csv":
        raise NewDataError(f"{csv} is not a .csv file: export it as comma-separated values")
    frame = clean_columns(read_csv_file(csv, str(csv)), str(csv))
    column = clean_name(target)
    if column not in frame.columns:
        shown = ", ".join(frame.columns[:12]) + (", ..." if len(frame.columns) > 12 else "")
        raise NewDataError(f"TARGET={target}: {csv.name} has no such column (it has {shown})")
    check_splittable(frame.drop_duplicates(), column, load_params(params_file).features)
    kinds = {name: guess_kind(frame[name]) for name in frame.columns if name != column}
    if all(kind == "ignore" for kind in kinds.values()):
        raise NewDataError(f"{csv.name} has no column the model could learn from besides {column}")

    stored = EXTERNAL_DATA_DIR / f"{clean_name(csv.stem)}.csv"
    data = DataParams(source="csv", csv=display_path(stored), target=column, columns=kinds)
    install(csv, stored, data, params_file)
    return kinds


def plug_in_folder(folder: Path, target: str, params_file: Path = PARAMS_FILE) -> int:
    """Check a folder of <label>/<picture> files, then make it the project's data; return the
    number of pictures."""
    if load_params(params_file).images is None:
        raise NewDataError("FOLDER= is for pictures: this project was made for another task")
    files = builtin_data.readable_pictures(folder)
    column = clean_name(target)
    labels = pd.DataFrame({column: [path.parent.name for path in files], "n": range(len(files))})
    check_splittable(labels, column, load_params(params_file).features)
    stored = EXTERNAL_DATA_DIR / "images"
    columns = builtin_data.COLUMNS
    data = DataParams(source="folder", folder=display_path(stored), target=column, columns=columns)
    install(folder, stored, data, params_file)
    return len(files)


def install(source: Path, stored: Path, data: DataParams, params_file: Path) -> None:
    """Make `source` the data `data` describes: params.yaml's `data` section, a copy at `stored`
    versioned by DVC, the `data` stage's output and the suite written from it; on failure
    params.yaml is put back."""
    old_params = params_file.read_text(encoding="utf-8")
    section = data_section(data, source.name)
    params_file.write_text(replace_section(old_params, "data", section), encoding="utf-8")
    try:
        load_params(params_file)  # e.g. a gate that needs a positive label this data lacks
        if stored.resolve() != source.resolve():
            stored.parent.mkdir(parents=True, exist_ok=True)
            if stored.is_dir():
                shutil.rmtree(stored)
            stored.unlink(missing_ok=True)
            if source.is_dir():
                shutil.copytree(source, stored)
            else:
                shutil.copyfile(source, stored)
        dvc("add", "--quiet", display_path(stored))
        dvc("repro", "--quiet", "data")
    except PipelineError:
        params_file.write_text(old_params, encoding="utf-8")
        raise
    frame = read_data(RAW_DATASET)
    suite = suite_document(frame, data.target, data.columns, DEFAULT_MARGIN, "dataset.csv")
    EXPECTATION_SUITE.write_text(suite_text(suite), encoding="utf-8")


@app.command()
def main(
    csv: Annotated[Path, typer.Argument(help="The team's CSV file, or folder of pictures")],
    target: Annotated[str, typer.Option(help="The column to predict (for pictures, to name)")],
) -> None:
    """Make CSV (or a folder of <label>/<picture> files) the project's data, TARGET the label."""
    with reported("data-new"):
        if csv.is_dir():
            counts = f"{plug_in_folder(csv, target)} pictures"
            review = "`images` (the size and colour the model reads)"
        else:
            kinds = plug_in(csv, target)
            kinds_counted = Counter(kinds.values()).items()
            counts = ", ".join(f"{count} {kind}" for kind, count in kinds_counted) + " columns"
            review = "`data` (the guessed\ncolumn kinds; positive_label for a binary target)"
    typer.echo(
        f"data-new: {csv.name} is the project's data: {counts}\n"
        f"Review before `make pipeline` (docs/your-data.md): in params.yaml, {review}\n"
        "and `gate` (each metric's minimum);\n"
        f"{display_path(EXPECTATION_SUITE)} (written from this data); and the tests\n"
        "(tests/test_default_data.py skips itself on other data).\n"
        "Then commit: git add --all && git commit -m 'Use our own data'"
    )


if __name__ == "__main__":
    app()
