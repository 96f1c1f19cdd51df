"""The `train` stage: the model it builds, how that model behaves, and what the stage records."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from tables import features_of, image, kinds, mixed_frame

from {{ cookiecutter.module_name }}.errors import (
    PipelineError,
)
from {{ cookiecutter.module_name }}.modeling.candidate import (
    read_candidate,
)
from {{ cookiecutter.module_name }}.modeling.scoring import (
    compute_metrics,
)
from {{ cookiecutter.module_name }}.modeling.splits import (
    feature_kinds,
    features_and_labels,
    read_split,
)
from {{ cookiecutter.module_name }}.modeling.train import (
    build_model,
    describe_features,
    git_commit,
    read_data_hash,
)


def test_forest_is_unscaled_and_regression_is_scaled(params, data_splits, with_train):
    columns = {"x": "numeric", "note": "text"}
    forest = build_model(with_train(params, model="random_forest").train, columns)
    numeric = forest.named_steps["columns"].transformers[0]
    assert numeric[:2] == ("numeric", "passthrough")
    assert isinstance(forest.steps[-1][1], RandomForestClassifier)
    regression = build_model(with_train(params, model="logistic_regression").train, columns)
    assert isinstance(regression.named_steps["columns"].transformers[0][1], StandardScaler)
    assert isinstance(regression.steps[-1][1], LogisticRegression)
    # And both learn the configured data.
    regression = build_model(with_train(params, model="logistic_regression").train, kinds())
    features, labels = features_of(data_splits[0])
    assert set(regression.fit(features, labels).classes_) == set(labels)


def test_each_kind_of_column_gets_its_encoder(params, with_train):
    columns = {"x": "numeric", "y": "numeric", "site": "category", "note": "text", "memo": "text"}
    linear = with_train(params, model="logistic_regression").train
    transformer = build_model(linear, columns).named_steps["columns"]
    parts = {name: (type(step), where) for name, step, where in transformer.transformers}
    assert parts == {
        "numeric": (StandardScaler, [0, 1]),
        "category": (OneHotEncoder, [2]),
        # A scalar: the vectorizers get the column itself. Words and character n-grams.
        "text_3_words": (TfidfVectorizer, 3),
        "text_3_chars": (TfidfVectorizer, 3),
        "text_4_words": (TfidfVectorizer, 4),
        "text_4_chars": (TfidfVectorizer, 4),
    }
    assert transformer.transformers[1][1].handle_unknown == "ignore"
    analyzers = {name: step.analyzer for name, step, _ in transformer.transformers[2:]}
    assert analyzers == {
        "text_3_words": "word",
        "text_3_chars": "char",
        "text_4_words": "word",
        "text_4_chars": "char",
    }
    # A forest gets the words only: character runs would crowd out the other columns.
    forest = build_model(with_train(params, model="random_forest").train, columns)
    names = [name for name, _, _ in forest.named_steps["columns"].transformers]
    assert names == ["numeric", "category", "text_3_words", "text_4_words"]


def test_a_model_of_mixed_columns_learns_and_ignores_unseen_categories(params):
    frame, data = mixed_frame()
    columns = feature_kinds(list(frame.columns), data.target, data.columns)
    assert list(columns) == ["reading", "count", "site", "note"]
    features, labels = features_and_labels(frame, data.target, columns)
    model = build_model(params.train, columns).fit(features, labels)
    assert model.score(features, labels) > 0.9
    unseen = features.head(3).assign(site="a site never seen")
    assert len(model.predict(unseen)) == 3


def test_training_ranges_categories_and_lengths_are_described():
    frame = pd.DataFrame({"x": [1.5, -2.0], "site": ["b", "a"], "note": ["hi", "longer"]})
    columns = {"x": "numeric", "site": "category", "note": "text"}
    described = describe_features(frame, columns)
    assert [(f.kind, f.name) for f in described] == list(
        zip(columns.values(), columns, strict=True)
    )
    assert (described[0].min, described[0].max) == (-2.0, 1.5)
    assert described[1].categories == ["a", "b"]
    assert described[2].max_length == 6


def test_parameters_reach_the_classifier(params, with_train):
    changed = with_train(
        params, model="random_forest", n_estimators=7, max_depth=None, random_state=5
    ).train
    classifier = build_model(changed, kinds()).steps[-1][1]
    assert (classifier.n_estimators, classifier.max_depth, classifier.random_state) == (7, None, 5)
    regression = build_model(with_train(params, model="logistic_regression", C=1e-6).train, kinds())
    assert regression.steps[-1][1].C == 1e-6


def test_model_reaches_every_gate_threshold(params, data_splits, fitted_model):
    """The model as configured meets the gate the team set for its data."""
    features, labels = features_of(data_splits[1])
    metrics = compute_metrics(
        labels,
        fitted_model.predict(features),
        fitted_model.predict_proba(features),
        [str(label) for label in fitted_model.classes_],
        params.data.positive_label,
    )
    for metric, minimum in params.gate.minimum.items():
        assert metrics[metric] >= minimum, metric


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
    assert 0 < recorded.data.metrics["train_accuracy"] <= 1.0
    assert "emissions" in pd.read_csv(space.emissions_file).columns

    # The features, and what the service will enforce of them, are those of the training split.
    target = space.params.data.target
    train_features, _ = read_split(space.train_file, target, kinds(), image())
    assert run.features == ([image()] if image() else describe_features(train_features, kinds()))
    assert [feature.name for feature in run.features] == list(kinds())

    # The MLflow model and the candidate file are the same model.
    test_features, _ = read_split(space.test_file, target, kinds(), image())
    logged = mlflow.sklearn.load_model(run.model_uri)
    np.testing.assert_array_equal(logged.predict(test_features), model.predict(test_features))
