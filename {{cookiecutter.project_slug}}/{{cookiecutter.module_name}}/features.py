"""Stage `features`: drop exact duplicate rows (so no row sits in both sets), then split the
validated raw data into train and test sets with the label's proportions kept (stratified). A
picture's path does not count: the same file under two names (same sha256, size, label) is a
duplicate too.
Preprocessing that learns from data (scaling) lives in the model pipeline, so the exported model
applies it too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import typer
from sklearn.model_selection import train_test_split

from .config import PARAMS_FILE, RAW_DATASET, TEST_FILE, TRAIN_FILE
from .errors import PipelineError, reported
from .params import ColumnKind, FeaturesParams, load_params

app = typer.Typer(add_completion=False, help=__doc__)


class SplitSizeError(PipelineError):
    """The data cannot be split into train and test sets that both hold every class."""


def check_splittable(frame: pd.DataFrame, target: str, params: FeaturesParams) -> None:
    """Raise SplitSizeError, naming what to change, unless a stratified split of `frame` can
    give both sets every class (what scikit-learn's train_test_split needs)."""
    if target not in frame.columns:
        raise SplitSizeError(f"the target column {target!r} (data.target) is not in the data")
    missing = int(frame[target].isna().sum())
    if missing:
        raise SplitSizeError(
            f"{missing} rows have no value in the target column {target!r}: label or drop them"
        )
    counts = frame[target].astype(str).value_counts()
    if len(counts) < 2:
        raise SplitSizeError(
            f"the target column {target!r} holds one class ({counts.index[0]!r}): a classifier "
            "needs two or more"
        )
    rare = counts[counts < 2]
    if len(rare):
        raise SplitSizeError(
            f"class {rare.index[0]!r} of {target!r} has a single row: a stratified split needs "
            f"at least two of each class (add rows, or drop or merge it; {len(rare)} such)"
        )
    rows = len(frame)
    test_rows = math.ceil(params.test_size * rows)
    if min(test_rows, rows - test_rows) < len(counts):
        raise SplitSizeError(
            f"{len(counts)} classes, but with features.test_size {params.test_size} the "
            f"{rows} rows split into {rows - test_rows} train and {test_rows} test rows: each "
            "set needs a row of every class; change test_size or bring more rows"
        )


def split(
    frame: pd.DataFrame,
    target: str,
    params: FeaturesParams,
    columns: Mapping[str, ColumnKind] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test sets of `frame`; `columns` (data.columns) names the image columns."""
    pictures = [name for name, kind in (columns or {}).items() if kind == "image"]
    compared = [name for name in frame.columns if name not in pictures]
    # ---- TEAM: your feature engineering, on `frame`, before the split. ----
    unique = frame.drop_duplicates(subset=compared).reset_index(drop=True)
    # ---- end TEAM ----
    check_splittable(unique, target, params)
    train, test = train_test_split(
        unique,
        test_size=params.test_size,
        random_state=params.random_state,
        stratify=unique[target],
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


@app.command()
def main(
    input_path: Path = RAW_DATASET,
    train_path: Path = TRAIN_FILE,
    test_path: Path = TEST_FILE,
    params_file: Path = PARAMS_FILE,
) -> None:
    """Write the train and test splits."""
    with reported("features"):
        params = load_params(params_file)
        frame = pd.read_csv(input_path)
        train, test = split(frame, params.data.target, params.features, params.data.columns)
    train_path.parent.mkdir(parents=True, exist_ok=True)
    train.to_csv(train_path, index=False)
    test.to_csv(test_path, index=False)
    typer.echo(f"features: {len(train)} train rows, {len(test)} test rows")


if __name__ == "__main__":
    app()
