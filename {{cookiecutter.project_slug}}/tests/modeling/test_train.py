"""The `train` stage: the model it builds, how that model behaves, and what the stage records."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from {{ cookiecutter.module_name }}.errors import (
    PipelineError,
)
from {{ cookiecutter.module_name }}.modeling.candidate import (
    read_candidate,
)
from {{ cookiecutter.module_name }}.modeling.scoring import (
    compute_metrics,
    positive_column,
)
from {{ cookiecutter.module_name }}.modeling.splits import (
    features_and_labels,
)
from {{ cookiecutter.module_name }}.modeling.train import (
    build_model,
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


def malignancy(model, features: pd.DataFrame, positive: str) -> np.ndarray:
    return model.predict_proba(features)[:, positive_column(model.classes_, positive)]


def test_forest_is_unscaled_and_regression_is_scaled(params, splits, with_train):
    forest = build_model(with_train(params, model="random_forest").train)
    assert [type(step) for _, step in forest.steps] == [RandomForestClassifier]
    regression = build_model(with_train(params, model="logistic_regression").train)
    assert [type(step) for _, step in regression.steps] == [StandardScaler, LogisticRegression]
    features, labels = features_and_labels(splits[0], params.data.target)
    assert set(regression.fit(features, labels).classes_) == set(labels)


def test_parameters_reach_the_classifier(params, with_train):
    forest = build_model(with_train(params, n_estimators=7, max_depth=None, random_state=5).train)
    classifier = forest.steps[-1][1]
    assert (classifier.n_estimators, classifier.max_depth, classifier.random_state) == (7, None, 5)
    regression = build_model(with_train(params, model="logistic_regression", C=1e-6).train)
    assert regression.steps[-1][1].C == 1e-6


def test_model_reaches_every_gate_threshold(params, splits, fitted_model):
    features, labels = features_and_labels(splits[1], params.data.target)
    positive = params.data.positive_label
    metrics = compute_metrics(
        labels,
        fitted_model.predict(features),
        malignancy(fitted_model, features, positive),
        positive,
    )
    assert metrics["accuracy"] >= params.gate.min_accuracy
    assert metrics["f1"] >= params.gate.min_f1
    assert metrics["roc_auc"] >= params.gate.min_roc_auc


@pytest.mark.parametrize("factor", [0.999, 1.001])
def test_tiny_texture_change_keeps_every_prediction(params, splits, fitted_model, factor):
    """Invariance: a 0.1% change of one measurement is noise, not a new diagnosis."""
    features, _ = features_and_labels(splits[1], params.data.target)
    nudged = features.assign(mean_texture=features["mean_texture"] * factor)
    np.testing.assert_array_equal(fitted_model.predict(nudged), fitted_model.predict(features))


def test_larger_tumours_look_more_malignant(params, splits, fitted_model):
    """Direction: growing the size measurements of benign-looking tumours by half never lowers,
    and on average clearly raises, the probability of malignancy."""
    features, _ = features_and_labels(splits[1], params.data.target)
    positive = params.data.positive_label
    benign_looking = features[fitted_model.predict(features) != positive]
    assert len(benign_looking) > 10
    larger = benign_looking.copy()
    larger[SIZE_FEATURES] *= 1.5
    before = malignancy(fitted_model, benign_looking, positive)
    after = malignancy(fitted_model, larger, positive)
    assert np.all(after >= before)
    assert np.mean(after - before) > 0.1


def test_git_commit_is_unknown_outside_a_repository(tmp_path):
    assert git_commit(tmp_path) == "unknown"


def test_missing_data_metadata_is_reported(tmp_path):
    with pytest.raises(PipelineError, match=r"dataset\.json"):
        read_data_hash(tmp_path / "dataset.json")


@pytest.mark.slow
def test_training_records_model_data_features_and_emissions(champion_workspace):
    space = champion_workspace
    model, run = read_candidate(space.root / "models" / "candidate")
    data_sha256 = read_data_hash(space.raw_metadata)
    assert run.data_sha256 == data_sha256

    recorded = MlflowClient().get_run(run.run_id)
    assert recorded.data.params["data_sha256"] == data_sha256
    assert recorded.data.tags["data_sha256"] == data_sha256
    assert recorded.data.tags["git_commit"] == run.git_commit
    assert recorded.data.params["model"] == space.params.train.model
    assert recorded.data.metrics["emissions_kg_co2eq"] >= 0
    assert 0.9 <= recorded.data.metrics["train_accuracy"] <= 1.0
    assert "emissions" in pd.read_csv(space.emissions_file).columns

    # The feature ranges that the service will enforce are those of the training split.
    train_features, _ = features_and_labels(pd.read_csv(space.train_file), space.params.data.target)
    assert [feature.name for feature in run.features] == list(train_features.columns)
    for feature in run.features:
        assert feature.min == train_features[feature.name].min()
        assert feature.max == train_features[feature.name].max()

    # The MLflow model and the candidate file are the same model.
    test_features, _ = features_and_labels(pd.read_csv(space.test_file), space.params.data.target)
    logged = mlflow.sklearn.load_model(run.model_uri)
    np.testing.assert_array_equal(logged.predict(test_features), model.predict(test_features))
