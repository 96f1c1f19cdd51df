"""Stage `evaluate`: score the candidate on the test split and draw its curves.

The metrics, with `data.positive_label` as the positive class, go to reports/metrics.json (for
`dvc metrics`); the curves go to reports/plots/*.csv (for `dvc plots`) and reports/figures/*.png;
the metrics and figures also go to the candidate's MLflow run. Deciding whether the candidate
becomes the champion is `promote`'s job.
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
from .scoring import compute_metrics, positive_column
from .splits import read_split

app = typer.Typer(add_completion=False, help=__doc__)


@dataclass(frozen=True)
class Reports:
    """Where the stage writes; the defaults are the pipeline's paths."""

    metrics_file: Path = METRICS_FILE
    plots_dir: Path = PLOTS_DIR
    figures_dir: Path = FIGURES_DIR


def write_plot_data(
    labels: pd.Series, predicted: np.ndarray, scores: np.ndarray, positive_label: str, folder: Path
) -> list[Path]:
    """The CSV files behind `dvc plots`: one row per test sample, then the two curves."""
    folder.mkdir(parents=True, exist_ok=True)
    is_positive = labels == positive_label
    fpr, tpr, _ = roc_curve(is_positive, scores)
    precision, recall, _ = precision_recall_curve(is_positive, scores)
    tables = {
        "confusion.csv": pd.DataFrame({"actual": labels.to_numpy(), "predicted": predicted}),
        "roc.csv": pd.DataFrame({"fpr": fpr, "tpr": tpr}),
        "precision_recall.csv": pd.DataFrame({"recall": recall, "precision": precision}),
    }
    for name, table in tables.items():
        table.to_csv(folder / name, index=False)
    return [folder / name for name in tables]


def write_figures(
    labels: pd.Series, predicted: np.ndarray, scores: np.ndarray, positive_label: str, folder: Path
) -> list[Path]:
    """The confusion matrix, ROC and precision-recall curves as PNG files."""
    matplotlib.use("Agg")  # files only, never a window
    folder.mkdir(parents=True, exist_ok=True)
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
        figure.savefig(folder / name, dpi=100)
        paths.append(folder / name)
    return paths


def log_evaluation(run: CandidateRun, metrics: dict[str, float], figures: list[Path]) -> None:
    """Add the test metrics and figures to the candidate's training run."""
    client = connect()
    with tracking_errors():
        mlflow.log_metrics(
            {f"{TEST_METRIC_PREFIX}{key}": value for key, value in metrics.items()},
            run_id=run.run_id,
        )
        for figure in figures:
            client.log_artifact(run.run_id, str(figure), artifact_path="evaluation")


def evaluate(
    candidate_dir: Path, test_path: Path, target: str, positive_label: str, reports: Reports
) -> dict[str, float]:
    """Score the candidate, write the reports and log them to its run; return the metrics."""
    model, run = read_candidate(candidate_dir)
    features, labels = read_split(test_path, target)
    predicted = model.predict(features).astype(str)
    scores = model.predict_proba(features)[:, positive_column(model.classes_, positive_label)]
    metrics = compute_metrics(labels, predicted, scores, positive_label)

    reports.metrics_file.parent.mkdir(parents=True, exist_ok=True)
    reports.metrics_file.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    write_plot_data(labels, predicted, scores, positive_label, reports.plots_dir)
    figures = write_figures(labels, predicted, scores, positive_label, reports.figures_dir)
    log_evaluation(run, metrics, figures)
    return metrics


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
    typer.echo("evaluate: " + ", ".join(f"{key} {value:.3f}" for key, value in metrics.items()))


if __name__ == "__main__":
    app()
