"""Test-split metrics, computed the same way for every model that is judged.

`evaluate` scores the scikit-learn candidate with it, and `promote` scores the candidate's and the
champion's ONNX bundles with it, so thresholds and comparisons always use one definition. They
fit any number of classes: accuracy; precision, recall and F1 averaged over the classes (macro:
each class counts alike; weighted: by its share of the data); the ROC AUC (one-vs-rest and
macro-averaged with more than two classes); and, when `data.positive_label` names a class of a
binary target, precision, recall and F1 of that class (`positive_*`). `per_class` gives each
class's precision, recall, F1 and support, for the reports.
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
    """The model and the data do not fit together (for example, an unknown positive label)."""


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
    """ROC AUC of the probabilities (one-vs-rest, macro, with more than two classes); None when
    the test split lacks a class, which leaves its curve undefined."""
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
    """The headline metrics of predictions against the true labels (see the module's text)."""
    predicted = np.asarray(predicted, dtype=str)
    names = [str(label) for label in classes]
    metrics: dict[str, float | None] = {"accuracy": float(accuracy_score(labels, predicted))}
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            labels, predicted, labels=names, average=average, zero_division=0
        )
        metrics[f"f1_{average}"] = float(f1)
        if average == "macro":
            metrics["precision_macro"], metrics["recall_macro"] = float(precision), float(recall)
    metrics["roc_auc"] = roc_auc(labels, probabilities, names)
    if positive_label is not None:
        positive_column(names, positive_label)  # a binary target with that class, or an error
        precision, recall, f1, _ = precision_recall_fscore_support(
            labels, predicted, labels=[positive_label], average=None, zero_division=0
        )
        metrics["positive_precision"] = float(precision[0])
        metrics["positive_recall"] = float(recall[0])
        metrics["positive_f1"] = float(f1[0])
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
