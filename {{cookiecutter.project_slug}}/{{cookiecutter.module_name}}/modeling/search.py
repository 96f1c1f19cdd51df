"""One trial of `make tune`: the parameters it picks from the search space, and its score.

A trial fits the model `train` would build (estimators.build_model) with the parameters it picked,
on the training split minus a validation part, and scores it on that part with the gate's metrics
(scoring.compute_metrics): the test split stays the gate's alone. `run_trial` runs wherever the
trial runs, in `make tune`'s process or on a Dask worker, and imports neither MLflow nor Optuna.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ..bundle import Feature, Kind
from ..params import SearchSpace, TrainParams
from .estimators import build_model
from .scoring import compute_metrics


class Suggests(Protocol):
    """What a trial needs of Optuna's Trial (`study.ask()` gives one)."""

    def suggest_categorical(self, name: str, choices: list[str]) -> Any: ...
    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...


@dataclass(frozen=True)
class Validation:
    """The training split in two: the rows a trial fits on, and the rows that score it."""

    fit_features: pd.DataFrame
    fit_labels: pd.Series
    features: pd.DataFrame
    labels: pd.Series
    positive_label: str | None


@dataclass(frozen=True)
class Outcome:
    """A trial's score (None when it failed), its seconds and, when it failed, why."""

    score: float | None
    seconds: float
    error: str = ""


def carve(
    features: pd.DataFrame, labels: pd.Series, size: float, seed: int, positive: str | None
) -> Validation:
    """A seeded validation part of the training split, with each class in its proportion."""
    stratify = labels if labels.value_counts().min() >= 2 else None
    try:
        parts = train_test_split(
            features, labels, test_size=size, random_state=seed, stratify=stratify
        )
    except ValueError:  # too few validation rows to hold every class: a plain seeded split
        parts = train_test_split(features, labels, test_size=size, random_state=seed)
    fit_features, features_part, fit_labels, labels_part = parts
    return Validation(fit_features, fit_labels, features_part, labels_part, positive)


def suggest(trial: Suggests, space: SearchSpace) -> dict[str, Any]:
    """The `train` keys a trial sets: the algorithm, then that algorithm's parameters."""
    model = trial.suggest_categorical("model", space.algorithms())
    if model == "random_forest" and space.random_forest is not None:
        trees, depth = space.random_forest.n_estimators, space.random_forest.max_depth
        return {
            "model": model,
            "n_estimators": trial.suggest_int("n_estimators", *trees, log=True),
            "max_depth": trial.suggest_int("max_depth", *depth),
        }
    if model == "logistic_regression" and space.logistic_regression is not None:
        return {
            "model": model,
            "C": trial.suggest_float("C", *space.logistic_regression.C, log=True),
        }
    assert space.mlp is not None  # the last algorithm SearchSpace knows
    units = trial.suggest_int("hidden_units", *space.mlp.hidden_units, log=True)
    return {"model": model, "hidden_layers": [units]}


def with_changes(train: TrainParams, changes: dict[str, Any]) -> TrainParams:
    return TrainParams.model_validate({**train.model_dump(), **changes})


def apply_command(changes: dict[str, Any]) -> str:
    """The `dvc exp run` command that runs the pipeline with `changes` to the train section."""
    settings = " ".join(f"-S train.{key}={yaml_value(value)}" for key, value in changes.items())
    return f"dvc exp run {settings}"


def yaml_value(value: Any) -> str:
    """A value as DVC's -S reads it: a list in brackets without spaces, a float in full."""
    if isinstance(value, list):
        return "[" + ",".join(yaml_value(item) for item in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


def run_trial(
    train: TrainParams,
    kinds: dict[str, Kind],
    image: Feature | None,
    data: Validation,
    metric: str,
) -> Outcome:
    """Fit the model of `train` on the fitting rows and score `metric` on the validation rows."""
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # A small search range may stop a network before it converges: scored all the same.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = build_model(train, kinds, image).fit(data.fit_features, data.fit_labels)
        classes = [str(label) for label in model.classes_]
        predicted = model.predict(data.features).astype(str)
        scores = compute_metrics(
            data.labels, predicted, model.predict_proba(data.features), classes, data.positive_label
        )
    except (ValueError, MemoryError) as error:  # what scikit-learn raises for a bad combination
        return Outcome(None, time.perf_counter() - started, f"{type(error).__name__}: {error}")
    score = scores.get(metric)
    seconds = time.perf_counter() - started
    if score is None:  # ROC AUC without every class in the validation rows
        return Outcome(None, seconds, f"{metric} is undefined on this validation split")
    return Outcome(float(score), seconds)
