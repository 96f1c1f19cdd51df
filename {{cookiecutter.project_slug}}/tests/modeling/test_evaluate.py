"""The `evaluate` stage: metrics, plot data, figures, and what it logs to the candidate's run."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from mlflow import MlflowClient
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
    write_figures,
    write_plot_data,
)
from {{ cookiecutter.module_name }}.modeling.scoring import (
    ScoringError,
    compute_metrics,
    positive_column,
)
from {{ cookiecutter.module_name }}.modeling.splits import (
    features_and_labels,
)


def test_metrics_plot_data_and_figures(tmp_path, params, splits, fitted_model):
    features, labels = features_and_labels(splits[1], params.data.target)
    positive = params.data.positive_label
    predicted = fitted_model.predict(features)
    scores = fitted_model.predict_proba(features)[
        :, positive_column(fitted_model.classes_, positive)
    ]

    metrics = compute_metrics(labels, predicted, scores, positive)
    assert set(metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert all(0.0 <= value <= 1.0 for value in metrics.values())

    write_plot_data(labels, predicted, scores, positive, tmp_path)
    confusion = pd.read_csv(tmp_path / "confusion.csv")
    assert list(confusion.columns) == ["actual", "predicted"]
    assert len(confusion) == len(labels)
    assert list(pd.read_csv(tmp_path / "roc.csv").columns) == ["fpr", "tpr"]
    assert list(pd.read_csv(tmp_path / "precision_recall.csv").columns) == ["recall", "precision"]

    for figure in write_figures(labels, predicted, scores, positive, tmp_path / "figures"):
        assert figure.read_bytes().startswith(b"\x89PNG")


def test_metrics_count_the_positive_class():
    labels = pd.Series(["malignant", "malignant", "benign", "benign"])
    predicted = ["malignant", "benign", "benign", "benign"]
    metrics = compute_metrics(labels, predicted, [0.9, 0.4, 0.3, 0.1], "malignant")
    assert metrics["accuracy"] == 0.75
    assert (metrics["precision"], metrics["recall"]) == (1.0, 0.5)
    assert metrics["roc_auc"] == 1.0  # the scores still rank both malignant cases first


def test_unknown_positive_label_is_refused(fitted_model):
    with pytest.raises(ScoringError, match="positive_label"):
        positive_column(fitted_model.classes_, "unknown")


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
    metrics = json.loads(space.reports.metrics_file.read_text(encoding="utf-8"))
    recorded = MlflowClient().get_run(run.run_id)
    for key, value in metrics.items():
        assert recorded.data.metrics[f"{TEST_METRIC_PREFIX}{key}"] == pytest.approx(value)
    logged = {item.path for item in MlflowClient().list_artifacts(run.run_id, "evaluation")}
    assert "evaluation/roc_curve.png" in logged
    assert (space.reports.plots_dir / "confusion.csv").is_file()
