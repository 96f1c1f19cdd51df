"""The `evaluate` stage: metrics, plot data, figures, and what it logs to the candidate's run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from tables import features_of
from typer.testing import CliRunner

from {{ cookiecutter.module_name }}.config import (
    TEST_METRIC_PREFIX,
)
from {{ cookiecutter.module_name }}.modeling import (
    evaluate as evaluate_stage,
)
from {{ cookiecutter.module_name }}.modeling.candidate import (
    read_candidate,
)
from {{ cookiecutter.module_name }}.modeling.evaluate import (
    Scored,
    write_figures,
    write_plot_data,
)
from {{ cookiecutter.module_name }}.modeling.scoring import (
    ScoringError,
    compute_metrics,
    per_class,
    positive_column,
)

# The metrics of every target; `positive_*` ones come with a positive label.
HEADLINE = ["accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro", "roc_auc"]


def test_metrics_plot_data_and_figures(tmp_path, params, data_splits, fitted_model):
    features, labels = features_of(data_splits[1])
    positive = params.data.positive_label
    scored = Scored.of(fitted_model, features, labels, positive)
    metrics = compute_metrics(
        labels, scored.predicted, scored.probabilities, scored.classes, positive
    )
    assert set(HEADLINE) <= set(metrics)
    assert all(value is None or 0.0 <= value <= 1.0 for value in metrics.values())

    write_plot_data(scored, tmp_path)
    confusion = pd.read_csv(tmp_path / "confusion.csv", dtype=str)
    assert list(confusion.columns) == ["actual", "predicted"]
    assert len(confusion) == len(labels)
    assert list(pd.read_csv(tmp_path / "roc.csv").columns) == ["fpr", "tpr"]
    assert list(pd.read_csv(tmp_path / "precision_recall.csv").columns) == ["recall", "precision"]

    for figure in write_figures(scored, tmp_path / "figures"):
        assert figure.read_bytes().startswith(b"\x89PNG")


def test_binary_metrics_count_the_positive_class():
    labels = pd.Series(["malignant", "malignant", "benign", "benign"])
    predicted = ["malignant", "benign", "benign", "benign"]
    probabilities = np.array([[0.1, 0.9], [0.6, 0.4], [0.7, 0.3], [0.9, 0.1]])
    classes = ["benign", "malignant"]
    metrics = compute_metrics(labels, predicted, probabilities, classes, "malignant")
    assert metrics["accuracy"] == 0.75
    assert (metrics["positive_precision"], metrics["positive_recall"]) == (1.0, 0.5)
    assert metrics["roc_auc"] == 1.0  # the scores still rank both malignant cases first
    # benign: precision 2/3, recall 1; malignant: precision 1, recall 1/2
    assert metrics["recall_macro"] == pytest.approx(0.75)
    assert metrics["precision_macro"] == pytest.approx((2 / 3 + 1) / 2)
    without = compute_metrics(labels, predicted, probabilities, classes, None)
    assert set(without) == set(HEADLINE)


def test_multiclass_metrics_average_the_classes():
    labels = pd.Series(["a", "a", "b", "b", "c", "c"])
    predicted = ["a", "a", "b", "c", "c", "c"]
    probabilities = np.array(
        [[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.1, 0.4, 0.5], [0, 0.1, 0.9],
         [0.1, 0.1, 0.8]]
    )  # fmt: skip
    metrics = compute_metrics(labels, predicted, probabilities, ["a", "b", "c"], None)
    assert metrics["accuracy"] == pytest.approx(5 / 6)
    # a: f1 1; b: precision 1, recall 1/2, f1 2/3; c: precision 2/3, recall 1, f1 4/5
    assert metrics["f1_macro"] == pytest.approx((1 + 2 / 3 + 4 / 5) / 3)
    assert metrics["roc_auc"] == pytest.approx(1.0)  # each class ranked first for its rows
    table = per_class(labels, predicted, ["a", "b", "c"])
    assert table["b"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}


def test_roc_auc_is_undefined_when_the_test_split_lacks_a_class():
    labels = pd.Series(["a", "b", "a"])
    probabilities = np.full((3, 3), 1 / 3)
    metrics = compute_metrics(labels, ["a", "b", "a"], probabilities, ["a", "b", "c"], None)
    assert metrics["roc_auc"] is None


def test_multiclass_curves_are_one_per_class_and_pooled_for_dvc():
    scored = Scored(
        labels=pd.Series(["a", "b", "c"]),
        predicted=np.array(["a", "b", "c"]),
        probabilities=np.eye(3),
        classes=["a", "b", "c"],
        positive_label=None,
    )
    assert list(scored.curves()) == ["a", "b", "c"]
    truth, scores = scored.pooled()
    assert (len(truth), truth.sum(), scores.sum()) == (9, 3, 3)


def test_a_positive_label_needs_a_binary_target(fitted_model):
    with pytest.raises(ScoringError, match="positive_label"):
        positive_column(["a", "b"], "unknown")
    with pytest.raises(ScoringError, match="3 classes: set it to null"):
        positive_column(["a", "b", "c"], "a")


def test_missing_candidate_is_one_line(workspace):
    result = CliRunner().invoke(
        evaluate_stage.app,
        [
            "--candidate-dir", str(workspace.root / "missing"),
            "--test-path", str(workspace.test_file),
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    missing = workspace.root / "missing" / "run.json"
    assert result.output.splitlines() == [f"evaluate: {missing} is missing: run `train` first"]


@pytest.mark.slow
def test_evaluation_is_written_and_logged_to_the_run(champion_workspace):
    space = champion_workspace
    _, run = read_candidate(space.root / "models" / "candidate")
    report = json.loads(space.reports.metrics_file.read_text(encoding="utf-8"))
    recorded = MlflowClient().get_run(run.run_id)
    for key in HEADLINE:
        if report[key] is not None:
            assert recorded.data.metrics[f"{TEST_METRIC_PREFIX}{key}"] == pytest.approx(report[key])
    assert set(report["per_class"]) == set(pd.read_csv(space.test_file, dtype=str)[
        space.params.data.target
    ])  # fmt: skip
    logged = {item.path for item in MlflowClient().list_artifacts(run.run_id, "evaluation")}
    assert {"evaluation/roc_curve.png", "evaluation/per_class.json"} <= logged
    assert (space.reports.plots_dir / "confusion.csv").is_file()
