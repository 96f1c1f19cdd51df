"""The `evaluate` stage: metrics, reports, registration and the quality gate."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from {{ cookiecutter.module_name }}.modeling import (
    evaluate as evaluate_stage,
)
from {{ cookiecutter.module_name }}.modeling.evaluate import (
    CHAMPION_ALIAS,
    compute_metrics,
    decide,
    positive_scores,
    write_figures,
    write_plot_data,
)
from {{ cookiecutter.module_name }}.modeling.train import (
    features_and_labels,
)

GATE = {"min_accuracy": 0.9, "min_f1": 0.9, "min_roc_auc": 0.95, "compare_on": "f1"}
GOOD = {"accuracy": 0.96, "precision": 0.97, "recall": 0.93, "f1": 0.95, "roc_auc": 0.99}


def evaluate_command(space, candidate_dir, params):
    """Run the stage as the pipeline does, on the workspace's files."""
    reports = space.reports
    return CliRunner().invoke(
        evaluate_stage.app,
        [
            "--candidate-dir", str(candidate_dir),
            "--test-path", str(space.test_file),
            "--params-file", str(space.write_params(params)),
            "--metrics-file", str(reports.metrics_file),
            "--plots-dir", str(reports.plots_dir),
            "--figures-dir", str(reports.figures_dir),
            "--gate-file", str(reports.gate_file),
        ],
    )  # fmt: skip


def champion(space) -> int:
    name = space.params["mlflow"]["registered_model"]
    return int(MlflowClient().get_model_version_by_alias(name, CHAMPION_ALIAS).version)


@pytest.mark.parametrize(
    ("metrics", "champion_score", "passed", "promoted"),
    [
        (GOOD, None, True, True),
        (GOOD, 0.94, True, True),
        (GOOD, 0.95, True, True),  # a tie goes to the newer model
        (GOOD, 0.96, True, False),
        ({**GOOD, "roc_auc": 0.90}, None, False, False),
        ({**GOOD, "accuracy": 0.5, "f1": 0.5}, 0.1, False, False),
    ],
)
def test_gate_decision(metrics, champion_score, passed, promoted):
    verdict = decide(metrics, GATE, champion_score)
    assert (verdict["passed_thresholds"], verdict["promoted"]) == (passed, promoted)
    assert verdict["reasons"]


def test_gate_names_every_failed_threshold():
    verdict = decide({**GOOD, "accuracy": 0.5, "f1": 0.5}, GATE, None)
    assert len(verdict["reasons"]) == 2
    assert "accuracy" in verdict["reasons"][0]
    assert "f1" in verdict["reasons"][1]


def test_gate_refuses_an_unknown_comparison_metric():
    with pytest.raises(ValueError, match="compare_on"):
        decide(GOOD, {**GATE, "compare_on": "speed"}, None)


def test_metrics_plot_data_and_figures(tmp_path, params, splits, fitted_model):
    features, labels = features_and_labels(splits[1], params["data"]["target"])
    positive = params["data"]["positive_label"]
    predicted = fitted_model.predict(features)
    scores = positive_scores(fitted_model, features, positive)

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


def test_unknown_positive_label_is_refused(params, splits, fitted_model):
    features, _ = features_and_labels(splits[1], params["data"]["target"])
    with pytest.raises(ValueError, match="positive_label"):
        positive_scores(fitted_model, features, "unknown")


@pytest.mark.slow
def test_first_candidate_becomes_champion(champion_workspace):
    space = champion_workspace
    gate = json.loads(space.reports.gate_file.read_text(encoding="utf-8"))
    assert gate["passed_thresholds"] and gate["promoted"]
    assert gate["candidate_version"] == gate["champion_version"] == 1
    assert gate["previous_champion_version"] is None
    assert champion(space) == 1

    metrics = json.loads(space.reports.metrics_file.read_text(encoding="utf-8"))
    assert metrics == gate["metrics"]
    run = MlflowClient().get_run(gate["candidate_run_id"])
    assert run.data.metrics["test_f1"] == pytest.approx(metrics["f1"])
    logged = {item.path for item in MlflowClient().list_artifacts(run.info.run_id, "evaluation")}
    assert "evaluation/roc_curve.png" in logged


@pytest.mark.slow
def test_candidate_below_thresholds_stops_the_pipeline(
    champion_workspace, train_candidate, folder_bytes
):
    space = champion_workspace
    bundle_before = folder_bytes(space.bundle_dir)
    params = space.params
    reseeded = {**params["train"], "random_state": 7}
    candidate = train_candidate(space, {**params, "train": reseeded}, "below_thresholds")
    strict = {
        **params,
        "gate": {**params["gate"], "min_accuracy": 1.01, "min_f1": 1.01, "min_roc_auc": 1.01},
    }

    result = evaluate_command(space, candidate, strict)

    assert result.exit_code == 1
    assert "gate failed: accuracy" in result.output
    gate = json.loads(space.reports.gate_file.read_text(encoding="utf-8"))
    assert not gate["passed_thresholds"] and not gate["promoted"]
    assert gate["champion_version"] == 1
    assert champion(space) == 1
    assert folder_bytes(space.bundle_dir) == bundle_before


@pytest.mark.slow
def test_worse_candidate_is_not_promoted(champion_workspace, train_candidate):
    space = champion_workspace
    params = space.params
    # A single one-split tree: good enough for lowered thresholds, worse than the champion.
    weak = {**params["train"], "model": "random_forest", "n_estimators": 1, "max_depth": 1}
    candidate = train_candidate(space, {**params, "train": weak}, "worse")
    lenient = {
        **params,
        "gate": {**params["gate"], "min_accuracy": 0.5, "min_f1": 0.5, "min_roc_auc": 0.5},
    }

    result = evaluate_command(space, candidate, lenient)

    assert result.exit_code == 0, result.output
    assert "not promoted" in result.output
    gate = json.loads(space.reports.gate_file.read_text(encoding="utf-8"))
    assert gate["passed_thresholds"] and not gate["promoted"]
    assert gate["candidate_version"] > 1
    assert gate["champion_version"] == gate["previous_champion_version"] == 1
    assert champion(space) == 1
