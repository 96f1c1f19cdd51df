"""Stage `train`: fit a candidate model on the training split and record it in MLflow.

The model is a scikit-learn pipeline that carries its own preprocessing (`build_model`). Fitting
runs under CodeCarbon's offline tracker (reports/emissions.csv). MLflow gets the parameters, the
raw data's hash, the git commit, the training metrics, the emissions and the model;
models/candidate/ gets the fitted model and run.json for the later stages.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import mlflow
import pandas as pd
import typer
from mlflow.models import infer_signature
from sklearn.metrics import accuracy_score, log_loss
from sklearn.pipeline import Pipeline

from ..bundle import CategoryFeature, Feature, Kind, NumericFeature, TextFeature
from ..config import (
    CANDIDATE_DIR,
    EMISSIONS_FILE,
    MODEL_ARTIFACT,
    PARAMS_FILE,
    PROJ_ROOT,
    RAW_METADATA,
    TRAIN_FILE,
)
from ..errors import PipelineError, reported
from ..params import Params, load_params
from ..tracking import connect, owner_tags, tracking_errors
from .candidate import CandidateRun, write_candidate
from .estimators import build_model
from .splits import feature_kinds, features_and_labels, image_feature, read_frame

app = typer.Typer(add_completion=False, help=__doc__)

# The libraries a process needs to load the MLflow model; listing them skips MLflow's slow
# requirement inference (a subprocess per call).
MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "skops", "numpy", "pandas")


def describe_features(features: pd.DataFrame, kinds: dict[str, Kind]) -> list[Feature]:
    """What training saw of each feature: numeric ranges, category values, text lengths."""
    described: list[Feature] = []
    for name, kind in kinds.items():
        values = features[name]
        if kind == "numeric":
            low, middle, high = (float(values.min()), float(values.median()), float(values.max()))
            described.append(NumericFeature(name=name, min=low, max=high, median=middle))
        elif kind == "category":
            commonest = str(values.mode().iloc[0])
            described.append(
                CategoryFeature(
                    name=name, categories=sorted(values.unique()), most_frequent=commonest
                )
            )
        else:
            described.append(TextFeature(name=name, max_length=int(values.str.len().max())))
    return described


def read_data_hash(metadata_path: Path) -> str:
    """The raw data's sha256, as recorded by the `data` stage."""
    try:
        return str(json.loads(metadata_path.read_text(encoding="utf-8"))["sha256"])
    except (OSError, ValueError, KeyError) as error:
        raise PipelineError(f"cannot read the data hash in {metadata_path}: {error}") from None


def git_commit(folder: Path = PROJ_ROOT) -> str:
    """The commit checked out in `folder`, or "unknown" outside a git repository."""
    command = ["git", "rev-parse", "HEAD"]
    try:
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def fit_with_emissions(
    model: Pipeline, features: pd.DataFrame, labels: pd.Series, emissions_file: Path, params: Params
) -> dict[str, float]:
    """Fit `model` while CodeCarbon measures; return seconds, kWh and kg CO2eq."""
    emissions_file.parent.mkdir(parents=True, exist_ok=True)
    from codecarbon import OfflineEmissionsTracker  # slow to import, and only this stage needs it

    tracker = OfflineEmissionsTracker(
        country_iso_code=params.energy.country_iso_code,
        output_dir=str(emissions_file.parent),
        output_file=emissions_file.name,
        project_name=params.mlflow.experiment,
        # Count this process only, not whatever else the machine is running.
        tracking_mode="process",
        log_level="error",
    )
    tracker.start()
    started = time.perf_counter()
    try:
        model.fit(features, labels)
    finally:
        seconds = time.perf_counter() - started
        emissions = tracker.stop()
    energy = tracker.final_emissions_data.energy_consumed if tracker.final_emissions_data else 0
    return {
        "fit_seconds": seconds,
        "energy_kwh": float(energy or 0.0),
        "emissions_kg_co2eq": float(emissions or 0.0),
    }


def log_model(model: Pipeline, features: pd.DataFrame) -> mlflow.models.model.ModelInfo:
    """Log the fitted pipeline to the active run as its MLflow model."""
    import skops.io  # here: it loads much of scikit-learn (~2 s)

    # uv-made environments have no pip, and MLflow warns it cannot pin pip in conda.yaml: harmless.
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    example = features.head(5)
    return mlflow.sklearn.log_model(
        model,
        name=MODEL_ARTIFACT,
        signature=infer_signature(example, model.predict(example)),
        input_example=example,
        pip_requirements=[f"{package}=={version(package)}" for package in MODEL_REQUIREMENTS],
        # skops refuses to load types it does not know; trust exactly those in our own model.
        skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
    )


def train(
    train_path: Path, metadata_path: Path, candidate_dir: Path, emissions_file: Path, params: Params
) -> tuple[CandidateRun, dict[str, float]]:
    """Fit, measure, log to MLflow and write the candidate folder; return its run and metrics."""
    target = params.data.target
    frame = read_frame(train_path)
    kinds = feature_kinds(list(frame.columns), target, params.data.columns)
    image = image_feature(kinds, params)
    features, labels = features_and_labels(frame, target, kinds, image)
    data_sha256 = read_data_hash(metadata_path)
    connect(params.mlflow.experiment)  # before fitting: a broken store fails in seconds

    model = build_model(params.train, kinds, image)
    measured = fit_with_emissions(model, features, labels, emissions_file, params)
    probabilities = model.predict_proba(features)
    metrics = {
        "train_accuracy": float(accuracy_score(labels, model.predict(features))),
        "train_log_loss": float(log_loss(labels, probabilities, labels=model.classes_)),
        **measured,
    }
    commit = git_commit()

    with tracking_errors(), mlflow.start_run(tags=owner_tags()) as run:
        mlflow.log_params(
            {
                **params.train.model_dump(),
                "target": target,
                "data_sha256": data_sha256,
                "train_rows": len(features),
                "n_features": features.shape[1],
            }
        )
        mlflow.set_tags({"data_sha256": data_sha256, "git_commit": commit})
        mlflow.log_metrics(metrics)
        model_info = log_model(model, features)

    candidate = CandidateRun(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        model_uri=model_info.model_uri,
        data_sha256=data_sha256,
        git_commit=commit,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        features=[image] if image else describe_features(features, kinds),
    )
    write_candidate(candidate_dir, model, candidate)
    return candidate, metrics


@app.command()
def main(
    train_path: Path = TRAIN_FILE,
    metadata_path: Path = RAW_METADATA,
    candidate_dir: Path = CANDIDATE_DIR,
    emissions_file: Path = EMISSIONS_FILE,
    params_file: Path = PARAMS_FILE,
) -> None:
    """Train the candidate model described in params.yaml."""
    typer.echo("train: fitting under CodeCarbon, then logging to MLflow (about 10-20 s)")
    with reported("train"):
        params = load_params(params_file)
        candidate, metrics = train(train_path, metadata_path, candidate_dir, emissions_file, params)
    typer.echo(
        f"train: {params.train.model}, train accuracy {metrics['train_accuracy']:.3f}, "
        f"{metrics['emissions_kg_co2eq']:.2e} kg CO2eq, MLflow run {candidate.run_id} "
        f"-> {candidate_dir}"
    )


if __name__ == "__main__":
    app()
