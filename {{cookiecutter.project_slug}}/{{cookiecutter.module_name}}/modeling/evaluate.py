"""Stage `evaluate`: score the candidate on the test split, register it, and apply the quality gate.

The metrics, with `data.positive_label` as the positive class, go to reports/metrics.json; the
curves go to reports/plots/*.csv (for `dvc plots`) and reports/figures/*.png; all of them go to the
candidate's MLflow run. The candidate becomes a version of the registered model named by
`mlflow.registered_model`, and the gate decides:

- a candidate below any `gate.min_*` threshold fails: the stage exits 1, so the pipeline stops
  and neither the `champion` alias nor the served bundle changes;
- a candidate that reaches every threshold takes the `champion` alias only if its
  `gate.compare_on` metric is at least the current champion's; otherwise it stays a plain version.

reports/gate.json records the decision and its reasons either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import matplotlib
import mlflow
import numpy as np
import pandas as pd
import typer
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
    accuracy_score,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.pipeline import Pipeline

from {{ cookiecutter.module_name }}.config import (
    CANDIDATE_DIR,
    FIGURES_DIR,
    GATE_FILE,
    METRICS_FILE,
    PARAMS_FILE,
    PLOTS_DIR,
    TEST_FILE,
    load_params,
    mlflow_tracking_uri,
)
from {{ cookiecutter.module_name }}.modeling.train import (
    MODEL_FILE,
    RUN_FILE,
    features_and_labels,
)

app = typer.Typer(add_completion=False, help=__doc__)

CHAMPION_ALIAS = "champion"
# Each gate threshold in params.yaml and the metric it bounds from below.
THRESHOLDS = {"min_accuracy": "accuracy", "min_f1": "f1", "min_roc_auc": "roc_auc"}
# Metrics are logged to MLflow under this prefix, next to the run's `train_*` metrics.
RUN_METRIC_PREFIX = "test_"


@dataclass(frozen=True)
class Reports:
    """Where the stage writes; the defaults are the pipeline's paths."""

    metrics_file: Path = METRICS_FILE
    plots_dir: Path = PLOTS_DIR
    figures_dir: Path = FIGURES_DIR
    gate_file: Path = GATE_FILE


def load_candidate(candidate_dir: Path) -> tuple[Pipeline, dict[str, Any]]:
    """The fitted candidate and its run.json, as written by the `train` stage."""
    model_path, run_path = candidate_dir / MODEL_FILE, candidate_dir / RUN_FILE
    for path in (model_path, run_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run the `train` stage first")
    return joblib.load(model_path), json.loads(run_path.read_text(encoding="utf-8"))


def positive_scores(model: Pipeline, features: pd.DataFrame, positive_label: str) -> np.ndarray:
    """The model's probability of the positive class for each row."""
    classes = [str(label) for label in model.classes_]
    if positive_label not in classes:
        raise ValueError(f"data.positive_label {positive_label!r} is not a class of {classes}")
    return model.predict_proba(features)[:, classes.index(positive_label)]


def compute_metrics(
    labels: pd.Series, predicted: np.ndarray, scores: np.ndarray, positive_label: str
) -> dict[str, float]:
    """Accuracy, and precision, recall, F1 and ROC AUC for the positive class."""
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, pos_label=positive_label)),
        "recall": float(recall_score(labels, predicted, pos_label=positive_label)),
        "f1": float(f1_score(labels, predicted, pos_label=positive_label)),
        "roc_auc": float(roc_auc_score(labels == positive_label, scores)),
    }


def write_plot_data(
    labels: pd.Series,
    predicted: np.ndarray,
    scores: np.ndarray,
    positive_label: str,
    plots_dir: Path,
) -> list[Path]:
    """The CSV files behind `dvc plots`: one row per test sample, then the two curves."""
    plots_dir.mkdir(parents=True, exist_ok=True)
    is_positive = labels == positive_label
    fpr, tpr, _ = roc_curve(is_positive, scores)
    precision, recall, _ = precision_recall_curve(is_positive, scores)
    tables = {
        "confusion.csv": pd.DataFrame({"actual": labels.to_numpy(), "predicted": predicted}),
        "roc.csv": pd.DataFrame({"fpr": fpr, "tpr": tpr}),
        "precision_recall.csv": pd.DataFrame({"recall": recall, "precision": precision}),
    }
    for name, table in tables.items():
        table.to_csv(plots_dir / name, index=False)
    return [plots_dir / name for name in tables]


def write_figures(
    labels: pd.Series,
    predicted: np.ndarray,
    scores: np.ndarray,
    positive_label: str,
    figures_dir: Path,
) -> list[Path]:
    """The confusion matrix, ROC and precision-recall curves as PNG files."""
    matplotlib.use("Agg")  # files only, never a window
    figures_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in {
        "confusion_matrix.png": lambda ax: ConfusionMatrixDisplay.from_predictions(
            labels, predicted, ax=ax, colorbar=False
        ),
        "roc_curve.png": lambda ax: RocCurveDisplay.from_predictions(
            labels,
            scores,
            pos_label=positive_label,
            name="candidate",
            ax=ax,
            plot_chance_level=True,
        ),
        "precision_recall_curve.png": lambda ax: PrecisionRecallDisplay.from_predictions(
            labels, scores, pos_label=positive_label, name="candidate", ax=ax
        ),
    }.items():
        figure = Figure(figsize=(5, 4), layout="constrained")
        draw(figure.subplots())
        figure.savefig(figures_dir / name, dpi=100)
        paths.append(figures_dir / name)
    return paths


def register(client: MlflowClient, name: str, run_info: dict[str, Any]) -> ModelVersion:
    """The registry version of the candidate's model, created unless it already exists."""
    for existing in client.search_model_versions(
        f"name = '{name}' and run_id = '{run_info['run_id']}'"
    ):
        if existing.source == run_info["model_uri"]:
            return existing  # the same candidate evaluated again: no duplicate version
    return mlflow.register_model(run_info["model_uri"], name)


def champion_version(client: MlflowClient, name: str) -> int | None:
    """The version that holds the `champion` alias, or None if there is none yet."""
    try:
        registered = client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    version = registered.aliases.get(CHAMPION_ALIAS)
    return None if version is None else int(version)


def decide(
    metrics: dict[str, float], gate: dict[str, Any], champion_score: float | None
) -> dict[str, Any]:
    """The gate's verdict: thresholds first, then the comparison with the champion."""
    compare_on = gate["compare_on"]
    if compare_on not in metrics:
        raise ValueError(f"gate.compare_on must be one of {sorted(metrics)}, not {compare_on!r}")
    failures = [
        f"{metric} {metrics[metric]:.4f} is below {key} {gate[key]}"
        for key, metric in THRESHOLDS.items()
        if metrics[metric] < gate[key]
    ]
    if failures:
        return {"passed_thresholds": False, "promoted": False, "reasons": failures}
    score = metrics[compare_on]
    if champion_score is None:
        promoted, reason = True, "there is no champion score to beat"
    elif score >= champion_score:
        promoted, reason = True, f"{compare_on} {score:.4f} >= the champion's {champion_score:.4f}"
    else:
        promoted, reason = False, f"{compare_on} {score:.4f} < the champion's {champion_score:.4f}"
    return {
        "passed_thresholds": True,
        "promoted": promoted,
        "reasons": ["every threshold holds", reason],
    }


def log_evaluation(
    client: MlflowClient,
    run_info: dict[str, Any],
    metrics: dict[str, float],
    figures: list[Path],
    positive_label: str,
) -> None:
    """Add the test metrics and figures to the candidate's training run."""
    run_id = run_info["run_id"]
    mlflow.log_metrics(
        {f"{RUN_METRIC_PREFIX}{key}": value for key, value in metrics.items()},
        run_id=run_id,
        model_id=run_info.get("model_id"),
    )
    client.set_tag(run_id, "positive_label", positive_label)
    for figure in figures:
        client.log_artifact(run_id, str(figure), artifact_path="evaluation")


def apply_gate(
    client: MlflowClient,
    name: str,
    run_info: dict[str, Any],
    metrics: dict[str, float],
    gate: dict[str, Any],
) -> dict[str, Any]:
    """Register the candidate, decide, move the alias if it wins; return the gate's record."""
    candidate = int(register(client, name, run_info).version)
    previous = champion_version(client, name)
    champion_score = None
    if previous is not None:
        champion_run = client.get_run(client.get_model_version(name, previous).run_id)
        champion_score = champion_run.data.metrics.get(f"{RUN_METRIC_PREFIX}{gate['compare_on']}")
    verdict = decide(metrics, gate, champion_score)
    client.set_model_version_tag(
        name, candidate, "gate", "passed" if verdict["passed_thresholds"] else "failed"
    )
    if verdict["promoted"]:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, candidate)
    return {
        "registered_model": name,
        "candidate_version": candidate,
        "candidate_run_id": run_info["run_id"],
        **verdict,
        "compare_on": gate["compare_on"],
        "candidate_score": metrics[gate["compare_on"]],
        "champion_score": champion_score,
        "previous_champion_version": previous,
        "champion_version": candidate if verdict["promoted"] else previous,
        "thresholds": {key: gate[key] for key in THRESHOLDS},
        "metrics": metrics,
    }


def evaluate(
    candidate_dir: Path, test_path: Path, params: dict[str, Any], reports: Reports
) -> dict[str, Any]:
    """Score, report, register and gate the candidate; return (and write) the gate's record."""
    target, positive_label = params["data"]["target"], str(params["data"]["positive_label"])
    model, run_info = load_candidate(candidate_dir)
    features, labels = features_and_labels(pd.read_csv(test_path), target)

    predicted = model.predict(features)
    scores = positive_scores(model, features, positive_label)
    metrics = compute_metrics(labels, predicted, scores, positive_label)
    reports.metrics_file.parent.mkdir(parents=True, exist_ok=True)
    reports.metrics_file.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    write_plot_data(labels, predicted, scores, positive_label, reports.plots_dir)
    figures = write_figures(labels, predicted, scores, positive_label, reports.figures_dir)

    mlflow.set_tracking_uri(mlflow_tracking_uri())
    client = MlflowClient()
    log_evaluation(client, run_info, metrics, figures, positive_label)
    record = apply_gate(
        client, params["mlflow"]["registered_model"], run_info, metrics, params["gate"]
    )
    reports.gate_file.parent.mkdir(parents=True, exist_ok=True)
    reports.gate_file.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


@app.command()
def main(
    candidate_dir: Path = CANDIDATE_DIR,
    test_path: Path = TEST_FILE,
    params_file: Path = PARAMS_FILE,
    metrics_file: Path = METRICS_FILE,
    plots_dir: Path = PLOTS_DIR,
    figures_dir: Path = FIGURES_DIR,
    gate_file: Path = GATE_FILE,
) -> None:
    """Evaluate the candidate and decide whether it becomes the champion."""
    params = load_params(params_file)
    reports = Reports(metrics_file, plots_dir, figures_dir, gate_file)
    try:
        record = evaluate(candidate_dir, test_path, params, reports)
    except (FileNotFoundError, ValueError) as error:
        typer.echo(f"evaluate: {error}", err=True)
        raise typer.Exit(1) from error
    metrics = ", ".join(f"{key} {value:.3f}" for key, value in record["metrics"].items())
    typer.echo(f"evaluate: version {record['candidate_version']}: {metrics}")
    if not record["passed_thresholds"]:
        for reason in record["reasons"]:
            typer.echo(f"evaluate: gate failed: {reason}", err=True)
        raise typer.Exit(1)
    outcome = "promoted to champion" if record["promoted"] else "not promoted"
    typer.echo(f"evaluate: {outcome}: {'; '.join(record['reasons'])}")


if __name__ == "__main__":
    app()
