"""Stage `evaluate`: score the candidate on the test split and draw its curves.

reports/metrics.json gets the metrics (modeling/scoring.py) and each class's precision, recall
and F1, for `dvc metrics`; reports/plots/*.csv the confusion matrix and the ROC and
precision-recall curves, for `dvc plots`; reports/figures/*.png the same drawn; the candidate's
MLflow run the metrics and figures. A binary target's curves are of its positive class
(`data.positive_label`, else the second class); with more classes the figures draw one curve per
class against the rest, and the CSV files hold their micro-average.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import mlflow
import numpy as np
import pandas as pd
import typer
from matplotlib.figure import Figure
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
    precision_recall_curve,
    roc_curve,
)
from sklearn.pipeline import Pipeline

from ..config import (
    CANDIDATE_DIR,
    FIGURES_DIR,
    METRICS_FILE,
    PARAMS_FILE,
    PLOTS_DIR,
    TEST_FILE,
    TEST_METRIC_PREFIX,
)
from ..errors import reported
from ..params import load_params
from ..tracking import connect, tracking_errors
from .candidate import CandidateRun, read_candidate
from .scoring import compute_metrics, per_class, positive_column
from .splits import image_of, kinds_of, read_split

app = typer.Typer(add_completion=False, help=__doc__)


@dataclass(frozen=True)
class Reports:
    """Where the stage writes; the defaults are the pipeline's paths."""

    metrics_file: Path = METRICS_FILE
    plots_dir: Path = PLOTS_DIR
    figures_dir: Path = FIGURES_DIR


@dataclass(frozen=True)
class Scored:
    """The test split's labels, and the candidate's predictions and class probabilities."""

    labels: pd.Series
    predicted: np.ndarray
    probabilities: np.ndarray
    classes: list[str]
    positive_label: str | None

    @classmethod
    def of(
        cls, model: Pipeline, features: pd.DataFrame, labels: pd.Series, positive: str | None
    ) -> Scored:
        predicted = model.predict(features).astype(str)
        classes = [str(label) for label in model.classes_]
        return cls(labels, predicted, model.predict_proba(features), classes, positive)

    def curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each curve's (is this class?, score) pairs, by class."""
        columns = list(enumerate(self.classes))
        if len(self.classes) == 2:
            positive = self.positive_label or self.classes[1]
            columns = [(positive_column(self.classes, positive), positive)]
        truth = self.labels.to_numpy()
        return {label: (truth == label, self.probabilities[:, i]) for i, label in columns}

    def pooled(self) -> tuple[np.ndarray, np.ndarray]:
        """Every curve's pairs together: the micro-average (the one curve of a binary target)."""
        truths, scores = zip(*self.curves().values(), strict=True)
        return np.concatenate(truths), np.concatenate(scores)


def write_plot_data(scored: Scored, folder: Path) -> None:
    """The CSV files behind `dvc plots`: one row per test sample, then the two curves."""
    folder.mkdir(parents=True, exist_ok=True)
    truth, scores = scored.pooled()
    fpr, tpr, _ = roc_curve(truth, scores)
    precision, recall, _ = precision_recall_curve(truth, scores)
    confusion = {"actual": scored.labels.to_numpy(), "predicted": scored.predicted}
    pd.DataFrame(confusion).to_csv(folder / "confusion.csv", index=False)
    pd.DataFrame({"fpr": fpr, "tpr": tpr}).to_csv(folder / "roc.csv", index=False)
    pr_curve = pd.DataFrame({"recall": recall, "precision": precision})
    pr_curve.to_csv(folder / "precision_recall.csv", index=False)


def write_figures(scored: Scored, folder: Path) -> list[Path]:
    """The confusion matrix, ROC and precision-recall curves as PNG files."""
    matplotlib.use("Agg")  # files only, never a window
    folder.mkdir(parents=True, exist_ok=True)
    figures = {
        name: Figure(figsize=(5, 4), layout="constrained")
        for name in ("confusion_matrix.png", "roc_curve.png", "precision_recall_curve.png")
    }
    confusion, roc, pr = (figure.subplots() for figure in figures.values())
    ConfusionMatrixDisplay.from_predictions(
        scored.labels, scored.predicted, labels=scored.classes, ax=confusion, colorbar=False
    )
    curves = scored.curves()
    for index, (label, (truth, score)) in enumerate(curves.items()):
        last = index == len(curves) - 1
        RocCurveDisplay.from_predictions(truth, score, name=label, ax=roc, plot_chance_level=last)
        PrecisionRecallDisplay.from_predictions(truth, score, name=label, ax=pr)
    for name, figure in figures.items():
        figure.savefig(folder / name, dpi=100)
    return [folder / name for name in figures]


def log_evaluation(run: CandidateRun, report: dict, figures: list[Path]) -> None:
    """Add the test metrics, the per-class table and the figures to the candidate's run."""
    client = connect()
    metrics = {
        f"{TEST_METRIC_PREFIX}{key}": value
        for key, value in report.items()
        if isinstance(value, float)  # not None (an undefined ROC AUC), not the per-class table
    }
    with tracking_errors():
        mlflow.log_metrics(metrics, run_id=run.run_id)
        client.log_dict(run.run_id, report["per_class"], "evaluation/per_class.json")
        for figure in figures:
            client.log_artifact(run.run_id, str(figure), artifact_path="evaluation")


def evaluate(
    candidate_dir: Path, test_path: Path, target: str, positive_label: str | None, reports: Reports
) -> dict:
    """Score the candidate, write the reports and log them to its run; return metrics.json."""
    model, run = read_candidate(candidate_dir)
    features, labels = read_split(test_path, target, kinds_of(run.features), image_of(run.features))
    scored = Scored.of(model, features, labels, positive_label)
    predicted, classes = scored.predicted, scored.classes
    metrics = compute_metrics(labels, predicted, scored.probabilities, classes, positive_label)
    report = {**metrics, "per_class": per_class(labels, predicted, classes)}

    reports.metrics_file.parent.mkdir(parents=True, exist_ok=True)
    reports.metrics_file.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_plot_data(scored, reports.plots_dir)
    log_evaluation(run, report, write_figures(scored, reports.figures_dir))
    return report


@app.command()
def main(
    candidate_dir: Path = CANDIDATE_DIR,
    test_path: Path = TEST_FILE,
    params_file: Path = PARAMS_FILE,
    metrics_file: Path = METRICS_FILE,
    plots_dir: Path = PLOTS_DIR,
    figures_dir: Path = FIGURES_DIR,
) -> None:
    """Score the candidate on the test split; write metrics, plots and figures."""
    with reported("evaluate"):
        data = load_params(params_file).data
        reports = Reports(metrics_file, plots_dir, figures_dir)
        metrics = evaluate(candidate_dir, test_path, data.target, data.positive_label, reports)
    del metrics["per_class"]
    shown = [
        f"{key} {'n/a' if value is None else f'{value:.3f}'}" for key, value in metrics.items()
    ]
    typer.echo("evaluate: " + ", ".join(shown))


if __name__ == "__main__":
    app()
