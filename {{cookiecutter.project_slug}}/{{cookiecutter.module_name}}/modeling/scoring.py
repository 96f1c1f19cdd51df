"""Test-split metrics, computed the same way for every model that is judged.

`evaluate` scores the scikit-learn candidate with it, and `promote` scores the candidate's and the
champion's ONNX bundles with it, so thresholds and comparisons always use one definition.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from ..errors import PipelineError


class ScoringError(PipelineError):
    """The model and the data do not fit together (for example, an unknown positive label)."""


def positive_column(classes: Sequence[str], positive_label: str) -> int:
    """Which probability column belongs to the positive class."""
    names = [str(label) for label in classes]
    if positive_label not in names:
        raise ScoringError(f"data.positive_label {positive_label!r} is not a class of {names}")
    return names.index(positive_label)


def compute_metrics(
    labels: pd.Series, predicted: Sequence[str], scores: np.ndarray, positive_label: str
) -> dict[str, float]:
    """Accuracy, and precision, recall, F1 and ROC AUC for the positive class."""
    predicted = np.asarray(predicted, dtype=str)
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, pos_label=positive_label)),
        "recall": float(recall_score(labels, predicted, pos_label=positive_label)),
        "f1": float(f1_score(labels, predicted, pos_label=positive_label)),
        "roc_auc": float(roc_auc_score(labels == positive_label, scores)),
    }
