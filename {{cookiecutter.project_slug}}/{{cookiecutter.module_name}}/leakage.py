"""The leakage check of the `validate` stage: does a single column predict the target by itself?

A column that gives the label away almost perfectly on its own is usually the label in disguise:
a copy or a code of it, a value recorded after the outcome, the row number of a file sorted by
class. A model trained with it is perfect on the test split and useless on real inputs, and as
the champion no honest candidate can beat it. Each numeric and category column gets a model of
its own that sees only that column (a few thresholds on a number: a decision tree with at most
two leaves per class; a lookup on a category), scored by balanced accuracy in 5-fold
cross-validation (1/classes is chance, whatever the classes' shares). A column at LEAKY_SCORE or
above stops `validate`, unless `data.allow_leaky_features` lists it.

Why a single column, and not a perfect model: easy problems are learnt perfectly without any
leakage (a forest makes no mistake on the 36 test rows of scikit-learn's wine data), but their
best single column stays far from perfect (wine 0.79, iris 0.95, breast cancer 0.91), while a
leaked label scores 1.00. Text columns are not checked: a text alone can honestly tell its
label (spam, sentiment). `promote` also refuses a candidate perfect on a large test split.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder
from sklearn.tree import DecisionTreeClassifier

from .errors import PipelineError
from .params import DataParams

# "Almost perfectly": honest columns of easy problems stay below 0.96, a leaked label reaches 1.
LEAKY_SCORE = 0.99
FOLDS = 5
# A leak shows in a sample as well as in the whole table; the check stays within a few seconds.
MAX_ROWS = 5000


class LeakageError(PipelineError):
    """A column predicts the target by itself: label leakage, until the team says otherwise."""


@dataclass(frozen=True)
class ColumnScore:
    column: str
    score: float  # balanced accuracy of the one-column model, cross-validated

    def __str__(self) -> str:
        return f"{self.column} ({self.score:.2f})"


def one_column_model(kind: str, classes: int):
    """Thresholds on a number (two leaves per class at most), or a lookup on a category."""
    if kind == "category":
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        return make_pipeline(encoder, DecisionTreeClassifier(random_state=0))
    return DecisionTreeClassifier(max_leaf_nodes=2 * classes, random_state=0)


def column_scores(frame: pd.DataFrame, target: str, kinds: Mapping[str, str]) -> list[ColumnScore]:
    """How well each numeric and category column predicts `target` alone, best first. Classes
    with a single row are left out (the `features` stage says why it cannot split them)."""
    data = frame[frame[target].notna()]
    if len(data) > MAX_ROWS:  # every class keeps its share
        data = data.groupby(target).sample(frac=MAX_ROWS / len(data), random_state=0)
    counts = data[target].astype(str).value_counts()
    data = data[data[target].astype(str).map(counts) >= 2]
    labels = data[target].astype(str)
    if labels.nunique() < 2:
        return []
    folds = min(FOLDS, int(labels.value_counts().min()))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=0)
    scores = []
    for name in data.columns:
        kind = kinds.get(name, "numeric")
        if name == target or kind not in ("numeric", "category"):
            continue
        if kind == "numeric":
            values = pd.to_numeric(data[name], errors="coerce")
            if values.isna().all():
                continue
        else:
            values = data[name].astype(str)
        predicted = cross_val_predict(
            one_column_model(kind, labels.nunique()), values.to_frame(), labels, cv=splitter
        )
        scores.append(ColumnScore(name, float(balanced_accuracy_score(labels, predicted))))
    return sorted(scores, key=lambda item: -item.score)


def check(frame: pd.DataFrame, data: DataParams) -> str:
    """Raise LeakageError naming every column that predicts the target alone and is not allowed;
    otherwise return a line on the best single column."""
    unknown = [name for name in data.allow_leaky_features if name not in frame.columns]
    if unknown:
        raise LeakageError(
            f"data.allow_leaky_features names {', '.join(map(repr, unknown))}, not a column of "
            "the data"
        )
    if data.target not in frame.columns:
        raise LeakageError(f"the target column {data.target!r} (data.target) is not in the data")
    scores = column_scores(frame, data.target, data.columns)
    refused = [
        item
        for item in scores
        if item.score >= LEAKY_SCORE and item.column not in data.allow_leaky_features
    ]
    if refused:
        names = ", ".join(map(str, refused))
        alone, it = ("each alone predict", "them") if len(refused) > 1 else ("alone predicts", "it")
        raise LeakageError(
            f"{names} {alone} {data.target} almost perfectly (balanced accuracy of a one-column "
            f"model): label leakage? Fix the data, make {it} `ignore` in data.columns, or list "
            f"{it} in data.allow_leaky_features if truly that telling"
        )
    checked = [item for item in scores if item.column not in data.allow_leaky_features]
    if not checked:
        return "no column to check for leakage (numeric or category, not allowed already)"
    return (
        f"no single column predicts {data.target}: the best alone, {checked[0].column}, has a "
        f"balanced accuracy of {checked[0].score:.2f}"
    )
