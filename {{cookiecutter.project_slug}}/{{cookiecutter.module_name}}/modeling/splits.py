"""The processed splits as the modelling stages use them: float features and text labels.

`features` writes data/processed/train.csv and test.csv; `train`, `evaluate`, `export` and
`promote` read them through `read_split`, so all four see the same columns in the same order and
the same types.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import PipelineError


class SplitError(PipelineError):
    """A processed split is missing or lacks a column."""


def features_and_labels(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.Series]:
    """Split a processed frame into float features (in file order) and text labels."""
    if target not in frame.columns:
        raise SplitError(f"the label column {target!r} (data.target) is not in the data")
    return frame.drop(columns=target).astype("float64"), frame[target].astype(str)


def read_split(path: Path, target: str) -> tuple[pd.DataFrame, pd.Series]:
    """Features and labels of a split written by the `features` stage."""
    if not path.is_file():
        raise SplitError(f"{path} is missing: run the `features` stage first (dvc repro)")
    return features_and_labels(pd.read_csv(path), target)
