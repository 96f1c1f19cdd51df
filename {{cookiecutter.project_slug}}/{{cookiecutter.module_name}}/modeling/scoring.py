"""Test-split metrics, one definition for every model judged: `evaluate` scores the scikit-learn
candidate, `promote` the candidate's and the champion's ONNX bundles.

For any number of classes: accuracy; precision, recall and F1 macro- and weighted-averaged; ROC
AUC (one-vs-rest, macro, beyond two classes); and `positive_*` precision, recall and F1 when
`data.positive_label` names a class of a binary target.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from ..errors import PipelineError


class ScoringError(PipelineError):
    """The model and the data do not fit together (an unknown positive label, say)."""


def positive_column(classes: Sequence[str], positive_label: str) -> int:
    """Which probability column belongs to the positive class (binary targets only)."""
    names = [str(label) for label in classes]
    if positive_label not in names:
        raise ScoringError(f"data.positive_label {positive_label!r} is not a class of {names}")
    if len(names) != 2:
        raise ScoringError(
            f"data.positive_label is set but the target has {len(names)} classes: set it to null"
        )
    return names.index(positive_label)


def roc_auc(labels: pd.Series, probabilities: np.ndarray, classes: Sequence[str]) -> float | None:
    """None when the test split lacks a class, which leaves its curve undefined."""
    names = [str(label) for label in classes]
    if set(names) - set(labels):
        return None
    if len(names) == 2:
        return float(roc_auc_score(labels == names[1], probabilities[:, 1]))
    return float(roc_auc_score(labels, probabilities, multi_class="ovr", labels=names))


def compute_metrics(
    labels: pd.Series,
    predicted: Sequence[str],
    probabilities: np.ndarray,
    classes: Sequence[str],
    positive_label: str | None,
) -> dict[str, float | None]:
    names = [str(label) for label in classes]
    predicted = np.asarray(predicted, dtype=str)
    macro, weighted = (
        precision_recall_fscore_support(
            labels, predicted, labels=names, average=average, zero_division=0
        )
        for average in ("macro", "weighted")
    )
    metrics: dict[str, float | None] = {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1_macro": float(macro[2]),
        "precision_macro": float(macro[0]),
        "recall_macro": float(macro[1]),
        "f1_weighted": float(weighted[2]),
        "roc_auc": roc_auc(labels, probabilities, names),
    }
    if positive_label is not None:
        positive_column(names, positive_label)  # a binary target with that class, or an error
        positive = per_class(labels, predicted, names)[positive_label]
        for key in ("precision", "recall", "f1"):
            metrics[f"positive_{key}"] = positive[key]
    return metrics


def per_class(
    labels: pd.Series, predicted: Sequence[str], classes: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support (test rows) of each class."""
    names = [str(label) for label in classes]
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, np.asarray(predicted, dtype=str), labels=names, average=None, zero_division=0
    )
    return {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(names)
    }
