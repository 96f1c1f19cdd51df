"""The leakage check of the `validate` stage: does a single column predict the target by itself?

Such a column is usually the label in disguise (a copy or code of it, a value recorded after the
outcome, the row number of a file sorted by class): a model using it is perfect on the test split
and useless on real inputs. Each numeric and category column gets a model that sees only it,
scored by balanced accuracy in 5-fold cross-validation. Not a perfect model: easy problems are
learnt perfectly without leakage, yet their best single column stays far from perfect (wine 0.79,
iris 0.95, breast cancer 0.91), while a leaked label scores 1.00. Texts are not checked: a text
alone can honestly tell its label (spam, sentiment), and neither are pictures: a picture's path
names its label's folder by design, and the model reads its pixels, never the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

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


class ColumnScore(NamedTuple):
    column: str
    score: float  # balanced accuracy of the one-column model, cross-validated


def column_scores(frame: pd.DataFrame, target: str, kinds: Mapping[str, str]) -> list[ColumnScore]:
    """How well each numeric and category column predicts `target` alone, best first. Classes
    with a single row are left out (the `features` stage says why it cannot split them)."""
    data = frame[frame[target].notna()]
    if len(data) > MAX_ROWS:  # every class keeps its share
        data = data.groupby(target).sample(frac=MAX_ROWS / len(data), random_state=0)
    labels = data[target].astype(str)
    kept = labels.map(labels.value_counts()) >= 2
    data, labels = data[kept], labels[kept]
    if labels.nunique() < 2:
        return []
    folds = StratifiedKFold(
        min(FOLDS, int(labels.value_counts().min())), shuffle=True, random_state=0
    )
    scores = []
    for name in data.columns:
        kind = kinds.get(name, "numeric")
        if kind == "category" and name != target:
            values = data[name].astype(str)
            encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
            model = make_pipeline(encoder, DecisionTreeClassifier(random_state=0))
        elif kind == "numeric" and name != target:
            values = pd.to_numeric(data[name], errors="coerce")
            # A few thresholds on the number: at most two leaves per class.
            model = DecisionTreeClassifier(max_leaf_nodes=2 * labels.nunique(), random_state=0)
        else:
            continue
        if values.notna().any():
            predicted = cross_val_predict(model, values.to_frame(), labels, cv=folds)
            scores.append(ColumnScore(name, float(balanced_accuracy_score(labels, predicted))))
    return sorted(scores, key=lambda item: -item.score)


def check(frame: pd.DataFrame, data: DataParams) -> str:
    """Raise LeakageError naming every column at LEAKY_SCORE or above that `allow_leaky_features`
    does not list; otherwise return a line on the best single column."""
    allowed = data.allow_leaky_features
    unknown = [name for name in allowed if name not in frame.columns]
    if unknown:
        raise LeakageError(
            f"data.allow_leaky_features names {', '.join(map(repr, unknown))}, not a column of "
            "the data"
        )
    if data.target not in frame.columns:
        raise LeakageError(f"the target column {data.target!r} (data.target) is not in the data")
    scores = column_scores(frame, data.target, data.columns)
    checked = [item for item in scores if item.column not in allowed]
    refused = [item for item in checked if item.score >= LEAKY_SCORE]
    if refused:
        names = ", ".join(f"{item.column} ({item.score:.2f})" for item in refused)
        alone, it = ("each alone predict", "them") if len(refused) > 1 else ("alone predicts", "it")
        raise LeakageError(
            f"{names} {alone} {data.target} almost perfectly (balanced accuracy of a one-column "
            f"model): label leakage? Fix the data, make {it} `ignore` in data.columns, or list "
            f"{it} in data.allow_leaky_features if truly that telling"
        )
    if not checked:
        return "no column to check for leakage (numeric or category, not allowed already)"
    return (
        f"no single column predicts {data.target}: the best alone, {checked[0].column}, has a "
        f"balanced accuracy of {checked[0].score:.2f}"
    )
