"""The `train` stage: the model it builds, how that model behaves, and what the stage records."""

from __future__ import annotations

import json

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from {{ cookiecutter.module_name }}.modeling.evaluate import (
    compute_metrics,
    positive_scores,
)
from {{ cookiecutter.module_name }}.modeling.train import (
    MODEL_FILE,
    RUN_FILE,
    build_model,
    features_and_labels,
    git_commit,
    read_data_hash,
)

SIZE_FEATURES = [
    "mean_radius",
    "mean_perimeter",
    "mean_area",
    "worst_radius",
    "worst_perimeter",
    "worst_area",
]


@pytest.mark.parametrize(
    ("kind", "classifier_type"),
    [("random_forest", RandomForestClassifier), ("logistic_regression", LogisticRegression)],
)
def test_model_is_scaling_then_the_chosen_classifier(params, splits, kind, classifier_type):
    model = build_model({**params["train"], "model": kind})
    assert isinstance(model.steps[0][1], StandardScaler)
    assert isinstance(model.steps[-1][1], classifier_type)
    features, labels = features_and_labels(splits[0], params["data"]["target"])
    assert set(model.fit(features, labels).classes_) == set(labels)


def test_unknown_model_kind_is_refused(params):
    with pytest.raises(ValueError, match=r"train\.model"):
        build_model({**params["train"], "model": "gradient_boosting"})


def test_model_reaches_every_gate_threshold(params, splits, fitted_model):
    features, labels = features_and_labels(splits[1], params["data"]["target"])
    positive = params["data"]["positive_label"]
    metrics = compute_metrics(
        labels,
        fitted_model.predict(features),
        positive_scores(fitted_model, features, positive),
        positive,
    )
    gate = params["gate"]
    assert metrics["accuracy"] >= gate["min_accuracy"]
    assert metrics["f1"] >= gate["min_f1"]
    assert metrics["roc_auc"] >= gate["min_roc_auc"]


@pytest.mark.parametrize("factor", [0.999, 1.001])
def test_tiny_texture_change_keeps_every_prediction(params, splits, fitted_model, factor):
    """Invariance: a 0.1% change of one measurement is noise, not a new diagnosis."""
    features, _ = features_and_labels(splits[1], params["data"]["target"])
    nudged = features.assign(mean_texture=features["mean_texture"] * factor)
    np.testing.assert_array_equal(fitted_model.predict(nudged), fitted_model.predict(features))


def test_larger_tumours_look_more_malignant(params, splits, fitted_model):
    """Direction: growing the size measurements of benign-looking tumours by half never lowers,
    and on average clearly raises, the probability of malignancy."""
    features, _ = features_and_labels(splits[1], params["data"]["target"])
    positive = params["data"]["positive_label"]
    benign_looking = features[fitted_model.predict(features) != positive]
    assert len(benign_looking) > 10
    larger = benign_looking.copy()
    larger[SIZE_FEATURES] *= 1.5
    before = positive_scores(fitted_model, benign_looking, positive)
    after = positive_scores(fitted_model, larger, positive)
    assert np.all(after >= before)
    assert np.mean(after - before) > 0.1


def test_git_commit_is_unknown_outside_a_repository(tmp_path):
    assert git_commit(tmp_path) == "unknown"


def test_missing_data_metadata_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="data"):
        read_data_hash(tmp_path / "dataset.json")


@pytest.mark.slow
def test_training_records_model_data_and_emissions(champion_workspace):
    space = champion_workspace
    run_info = json.loads((space.candidate_dir / RUN_FILE).read_text(encoding="utf-8"))
    data_sha256 = json.loads(space.raw_metadata.read_text(encoding="utf-8"))["sha256"]
    assert run_info["data_sha256"] == data_sha256

    run = MlflowClient().get_run(run_info["run_id"])
    assert run.data.params["data_sha256"] == data_sha256
    assert run.data.tags["data_sha256"] == data_sha256
    assert run.data.tags["git_commit"]
    assert run.data.params["model"] == space.params["train"]["model"]
    assert run.data.metrics["emissions_kg_co2eq"] >= 0
    assert 0.9 <= run.data.metrics["train_accuracy"] <= 1.0

    emissions = pd.read_csv(space.emissions_file)
    assert len(emissions) >= 1
    assert "emissions" in emissions.columns

    # The MLflow model and the candidate file are the same model.
    features, _ = features_and_labels(pd.read_csv(space.test_file), space.params["data"]["target"])
    logged = mlflow.sklearn.load_model(run_info["model_uri"])
    local = joblib.load(space.candidate_dir / MODEL_FILE)
    np.testing.assert_array_equal(logged.predict(features), local.predict(features))
