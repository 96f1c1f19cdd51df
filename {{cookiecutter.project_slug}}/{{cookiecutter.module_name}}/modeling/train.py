"""Stage `train`: fit a candidate model on the training split and record it in MLflow.

The model is a scikit-learn pipeline, standard scaling then the classifier named by `train.model`
in params.yaml, so whoever uses the model gets the scaling with it. Fitting runs under
CodeCarbon's offline tracker, which appends the energy used and its CO2 equivalent to
reports/emissions.csv. MLflow receives the parameters, the raw data's hash, the git commit, the
training metrics, the emissions and the model. models/candidate/ receives the fitted model and
run.json, which tells the `evaluate` stage which MLflow run and model it is judging.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd
import typer
from mlflow.models import infer_signature
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from {{ cookiecutter.module_name }}.config import (
    CANDIDATE_DIR,
    EMISSIONS_FILE,
    PARAMS_FILE,
    PROJ_ROOT,
    RAW_METADATA,
    TRAIN_FILE,
    load_params,
    mlflow_tracking_uri,
)

app = typer.Typer(add_completion=False, help=__doc__)

# What the candidate folder holds; `evaluate` reads both.
MODEL_FILE = "model.joblib"
RUN_FILE = "run.json"
# Logged with the run: feature names and ranges, which `export` copies into the bundle.
FEATURE_SCHEMA_ARTIFACT = "feature_schema.json"
# The libraries a process needs to load the MLflow model; listing them skips MLflow's slow
# requirement inference (a subprocess per call).
MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "skops", "numpy", "pandas")


def features_and_labels(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.Series]:
    """Split a processed frame into float features (in file order) and text labels."""
    if target not in frame.columns:
        raise ValueError(f"the label column {target!r} is not in the data")
    return frame.drop(columns=target).astype("float64"), frame[target].astype(str)


def build_model(train_params: dict[str, Any]) -> Pipeline:
    """The untrained pipeline described by the `train` section of params.yaml."""
    kind = train_params["model"]
    if kind == "random_forest":
        classifier = RandomForestClassifier(
            n_estimators=train_params["n_estimators"],
            max_depth=train_params["max_depth"],
            random_state=train_params["random_state"],
        )
    elif kind == "logistic_regression":
        # Scaled features converge quickly; the higher cap only guards against odd data.
        classifier = LogisticRegression(
            C=train_params["C"], max_iter=1000, random_state=train_params["random_state"]
        )
    else:
        raise ValueError(f"train.model must be random_forest or logistic_regression, not {kind!r}")
    return Pipeline([("scale", StandardScaler()), ("classifier", classifier)])


def training_metrics(model: Pipeline, features: pd.DataFrame, labels: pd.Series) -> dict:
    """How well the model fits its own training data (the test split is `evaluate`'s job)."""
    return {
        "train_accuracy": float(accuracy_score(labels, model.predict(features))),
        "train_log_loss": float(
            log_loss(labels, model.predict_proba(features), labels=model.classes_)
        ),
    }


def feature_schema(features: pd.DataFrame, target: str) -> dict[str, Any]:
    """The label's name, and the features' names (in model order) and ranges seen in training."""
    return {
        "target": target,
        "features": [
            {"name": name, "min": float(features[name].min()), "max": float(features[name].max())}
            for name in features.columns
        ],
    }


def read_data_hash(metadata_path: Path) -> str:
    """The raw data's sha256, as recorded by the `data` stage."""
    if not metadata_path.is_file():
        raise FileNotFoundError(f"{metadata_path} is missing: run the `data` stage first")
    return str(json.loads(metadata_path.read_text(encoding="utf-8"))["sha256"])


def git_commit(folder: Path = PROJ_ROOT) -> str:
    """The commit checked out in `folder`, or "unknown" outside a git repository."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def use_experiment(name: str) -> str:
    """Point MLflow at the project's tracking URI and experiment; return the experiment id.

    With an SQLite backend the artifacts go to `mlruns/` beside the database file, rather than
    wherever the process happens to run.
    """
    uri = mlflow_tracking_uri()
    mlflow.set_tracking_uri(uri)
    if uri.startswith("sqlite:///") and mlflow.get_experiment_by_name(name) is None:
        artifacts = Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlruns"
        mlflow.create_experiment(name, artifact_location=artifacts.as_uri())
    return mlflow.set_experiment(name).experiment_id


def fit_with_emissions(
    model: Pipeline,
    features: pd.DataFrame,
    labels: pd.Series,
    emissions_file: Path,
    country_iso_code: str,
    project_name: str,
) -> dict[str, float]:
    """Fit `model` while CodeCarbon measures; return seconds, kWh and kg CO2eq."""
    emissions_file.parent.mkdir(parents=True, exist_ok=True)
    # Imported here: only this stage measures energy, and CodeCarbon is slow to import.
    from codecarbon import OfflineEmissionsTracker

    tracker = OfflineEmissionsTracker(
        country_iso_code=country_iso_code,
        output_dir=str(emissions_file.parent),
        output_file=emissions_file.name,
        project_name=project_name,
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
    """Log the fitted pipeline to the active run as the MLflow model `model`."""
    # Imported here: it loads much of scikit-learn (~2 s), which `evaluate` and `export`, importing
    # this module, do not need.
    import skops.io

    # uv-made environments have no pip, and MLflow warns it cannot pin pip in conda.yaml: harmless.
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    example = features.head(5)
    return mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(example, model.predict(example)),
        input_example=example,
        pip_requirements=[f"{package}=={version(package)}" for package in MODEL_REQUIREMENTS],
        # skops refuses to load types it does not know; trust exactly those in our own model.
        skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
    )


def train(
    train_path: Path,
    metadata_path: Path,
    candidate_dir: Path,
    emissions_file: Path,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Fit, measure, log to MLflow and write the candidate folder; return run.json's content."""
    target = params["data"]["target"]
    train_params = params["train"]
    experiment = params["mlflow"]["experiment"]
    features, labels = features_and_labels(pd.read_csv(train_path), target)
    data_sha256 = read_data_hash(metadata_path)

    model = build_model(train_params)
    measured = fit_with_emissions(
        model,
        features,
        labels,
        emissions_file,
        params["energy"]["country_iso_code"],
        project_name=experiment,
    )
    metrics = {**training_metrics(model, features, labels), **measured}
    commit = git_commit()

    experiment_id = use_experiment(experiment)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(
            {
                **train_params,
                "target": target,
                "data_sha256": data_sha256,
                "train_rows": len(features),
                "n_features": features.shape[1],
            }
        )
        mlflow.set_tags({"data_sha256": data_sha256, "git_commit": commit})
        mlflow.log_metrics(metrics)
        mlflow.log_dict(feature_schema(features, target), FEATURE_SCHEMA_ARTIFACT)
        model_info = log_model(model, features)

    run_info = {
        "run_id": run.info.run_id,
        "experiment_id": experiment_id,
        "model_id": model_info.model_id,
        "model_uri": model_info.model_uri,
        "data_sha256": data_sha256,
        "git_commit": commit,
        "model_file": MODEL_FILE,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    candidate_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, candidate_dir / MODEL_FILE)
    (candidate_dir / RUN_FILE).write_text(json.dumps(run_info, indent=2) + "\n", encoding="utf-8")
    return {**run_info, "metrics": metrics}


@app.command()
def main(
    train_path: Path = TRAIN_FILE,
    metadata_path: Path = RAW_METADATA,
    candidate_dir: Path = CANDIDATE_DIR,
    emissions_file: Path = EMISSIONS_FILE,
    params_file: Path = PARAMS_FILE,
) -> None:
    """Train the candidate model described in params.yaml."""
    params = load_params(params_file)
    try:
        result = train(train_path, metadata_path, candidate_dir, emissions_file, params)
    except (FileNotFoundError, ValueError) as error:
        typer.echo(f"train: {error}", err=True)
        raise typer.Exit(1) from error
    metrics = result["metrics"]
    typer.echo(
        f"train: {params['train']['model']}, train accuracy {metrics['train_accuracy']:.3f}, "
        f"{metrics['emissions_kg_co2eq']:.2e} kg CO2eq, MLflow run {result['run_id']} "
        f"-> {candidate_dir}"
    )


if __name__ == "__main__":
    app()
