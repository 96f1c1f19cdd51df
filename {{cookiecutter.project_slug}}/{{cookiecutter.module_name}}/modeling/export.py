"""Stage `export`: turn the champion model into the bundle that the prediction service loads.

The bundle, models/bundle/, holds `model.onnx` and `metadata.json`; the service needs ONNX
Runtime and nothing else to use them (no scikit-learn, no pandas, no MLflow). metadata.json says
everything the service must know: the ordered feature names with their dtype and the range seen in
training, the class labels in the order of the probability columns, the positive label, the ONNX
input and output names, and where the model came from (registered name and version, data hash,
metrics).

The ONNX model must agree with scikit-learn on the test split (same labels, probabilities within
1e-4), or nothing is written. The new bundle is built in a temporary folder beside the old one and
swapped in with renames, so a failure at any point leaves the served bundle as it was. If the
bundle already holds the champion's version, the stage leaves it untouched.

The bundle is also logged to the champion's MLflow run, under `bundle/`, before the swap, so a
server can fetch the model of `models:/<name>@champion` from the tracking server instead of this
folder. When the local bundle is already current, it is logged only if the run lacks it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import onnxruntime as ort
import pandas as pd
import typer
from mlflow import MlflowClient
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.pipeline import Pipeline

from {{ cookiecutter.module_name }}.config import (
    BUNDLE_DIR,
    PARAMS_FILE,
    TEST_FILE,
    load_params,
    mlflow_tracking_uri,
)
from {{ cookiecutter.module_name }}.modeling.evaluate import (
    CHAMPION_ALIAS,
    RUN_METRIC_PREFIX,
    champion_version,
)
from {{ cookiecutter.module_name }}.modeling.train import (
    FEATURE_SCHEMA_ARTIFACT,
    features_and_labels,
)

app = typer.Typer(add_completion=False, help=__doc__)

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
# Where the bundle goes among the champion run's artifacts, for whatever serves the model.
BUNDLE_ARTIFACT_PATH = "bundle"
# Bumped when metadata.json changes in a way its readers must know about.
BUNDLE_FORMAT_VERSION = 1
INPUT_NAME = "input"
LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"
INPUT_DTYPE = "float32"
# Opsets that ONNX Runtime has run for years, so an older runtime in the service still loads it.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
PROBABILITY_TOLERANCE = 1e-4


class ExportError(RuntimeError):
    """The champion cannot be exported; the served bundle is left as it was."""


def sha256_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def bundle_version(bundle_dir: Path) -> tuple[str, int] | None:
    """(registered model, version) of an intact bundle, or None if it is missing or damaged."""
    try:
        metadata = json.loads((bundle_dir / METADATA_FILE).read_text(encoding="utf-8"))
        model = (bundle_dir / metadata["onnx"]["file"]).read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if sha256_bytes(model) != metadata["onnx"].get("sha256"):
        return None
    return metadata["registered_model"], int(metadata["model_version"])


def to_onnx(model: Pipeline, n_features: int) -> bytes:
    """The fitted pipeline as an ONNX model: float32 [rows, features] in, labels and
    class probabilities (a plain tensor, not a list of maps) out."""
    classifier = model.steps[-1][1]
    no_zipmap = {"zipmap": False}
    onnx_model = convert_sklearn(
        model,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        options={id(classifier): no_zipmap},
        target_opset=TARGET_OPSET,
    )
    outputs = [output.name for output in onnx_model.graph.output]
    if outputs != [LABEL_OUTPUT, PROBABILITIES_OUTPUT]:
        raise ExportError(f"unexpected ONNX outputs {outputs}")
    return onnx_model.SerializeToString()


def check_parity(model: Pipeline, onnx_model: bytes, features: pd.DataFrame) -> dict[str, Any]:
    """Compare ONNX Runtime with scikit-learn on `features`; raise ExportError if they differ."""
    # Both get the float32 values the service will send, so only the conversion is compared.
    inputs = features.to_numpy(dtype=np.float32)
    session = ort.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    onnx_labels, onnx_probabilities = session.run(None, {INPUT_NAME: inputs})
    rounded = pd.DataFrame(inputs.astype(np.float64), columns=features.columns)
    sklearn_labels = model.predict(rounded).astype(str)
    sklearn_probabilities = model.predict_proba(rounded)

    mismatched = int((onnx_labels.astype(str) != sklearn_labels).sum())
    difference = float(np.abs(onnx_probabilities - sklearn_probabilities).max(initial=0.0))
    if mismatched or difference > PROBABILITY_TOLERANCE:
        raise ExportError(
            f"ONNX and scikit-learn disagree on the test split: {mismatched} labels differ, "
            f"probabilities differ by up to {difference:.2e} (tolerance {PROBABILITY_TOLERANCE})"
        )
    return {
        "rows": len(features),
        "max_probability_difference": difference,
        "tolerance": PROBABILITY_TOLERANCE,
    }


def build_metadata(
    *,
    name: str,
    model_version: int,
    run: mlflow.entities.Run,
    schema: dict[str, Any],
    classes: list[str],
    positive_label: str,
    onnx_model: bytes,
    parity: dict[str, Any],
) -> dict[str, Any]:
    """metadata.json: everything the service needs next to model.onnx."""
    metrics = {
        key.removeprefix(RUN_METRIC_PREFIX): value
        for key, value in sorted(run.data.metrics.items())
        if key.startswith(RUN_METRIC_PREFIX)
    }
    return {
        "format_version": BUNDLE_FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "registered_model": name,
        "model_version": model_version,
        "run_id": run.info.run_id,
        "data_sha256": run.data.tags.get("data_sha256"),
        "target": schema["target"],
        "positive_label": positive_label,
        "classes": classes,
        "features": [{**feature, "dtype": INPUT_DTYPE} for feature in schema["features"]],
        "metrics": metrics,
        "onnx": {
            "file": MODEL_FILE,
            "sha256": sha256_bytes(onnx_model),
            "input_name": INPUT_NAME,
            "input_shape": [None, len(schema["features"])],
            "input_dtype": INPUT_DTYPE,
            "label_output": LABEL_OUTPUT,
            "probabilities_output": PROBABILITIES_OUTPUT,
            "opset": {domain or "ai.onnx": opset for domain, opset in TARGET_OPSET.items()},
        },
        "parity": parity,
        "libraries": {
            package: version(package)
            for package in ("scikit-learn", "skl2onnx", "onnx", "onnxruntime")
        },
    }


def previous_bundle_path(bundle_dir: Path) -> Path:
    """Where the served bundle waits while the new one is renamed into place."""
    return bundle_dir.with_name(f".{bundle_dir.name}.previous")


def recover_interrupted_swap(bundle_dir: Path) -> None:
    """Undo a swap that stopped between its two renames, and drop stale temporary folders."""
    previous = previous_bundle_path(bundle_dir)
    if previous.is_dir() and not bundle_dir.exists():
        previous.rename(bundle_dir)
    for stale in bundle_dir.parent.glob(f".{bundle_dir.name}.new-*"):
        shutil.rmtree(stale, ignore_errors=True)


def replace_bundle(bundle_dir: Path, files: dict[str, bytes]) -> None:
    """Write `files` as the new bundle folder, replacing the old one only once they are complete."""
    bundle_dir.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted_swap(bundle_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{bundle_dir.name}.new-", dir=bundle_dir.parent))
    previous = previous_bundle_path(bundle_dir)
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the service may run as another user
        for name, content in files.items():
            (staging / name).write_bytes(content)
        shutil.rmtree(previous, ignore_errors=True)
        if bundle_dir.exists():
            bundle_dir.rename(previous)
        try:
            staging.rename(bundle_dir)
        except OSError:
            if previous.exists() and not bundle_dir.exists():
                previous.rename(bundle_dir)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # still there only if the swap failed
    shutil.rmtree(previous, ignore_errors=True)


def read_bundle(bundle_dir: Path) -> dict[str, bytes]:
    """The files of an exported bundle, by name."""
    return {name: (bundle_dir / name).read_bytes() for name in (MODEL_FILE, METADATA_FILE)}


def bundle_is_logged(client: MlflowClient, run_id: str, files: dict[str, bytes]) -> bool:
    """Whether the run's `bundle/` artifacts already are `files` (same metadata, same sizes)."""
    listed = {
        info.path: info.file_size
        for info in client.list_artifacts(run_id, BUNDLE_ARTIFACT_PATH)
        if not info.is_dir
    }
    for name, content in files.items():
        size = listed.get(f"{BUNDLE_ARTIFACT_PATH}/{name}", -1)
        if size is not None and size != len(content):  # None: the store does not say
            return False
    # metadata.json holds the model's sha256: equal metadata means the same bundle.
    with tempfile.TemporaryDirectory() as scratch:
        path = f"{BUNDLE_ARTIFACT_PATH}/{METADATA_FILE}"
        logged = Path(client.download_artifacts(run_id, path, scratch))
        return logged.read_bytes() == files[METADATA_FILE]


def log_bundle(client: MlflowClient, run_id: str, files: dict[str, bytes]) -> bool:
    """Log `files` as the run's `bundle/` artifacts unless they are there; True if logged."""
    try:
        if bundle_is_logged(client, run_id, files):
            return False
        with tempfile.TemporaryDirectory() as scratch:
            for name, content in files.items():
                (Path(scratch) / name).write_bytes(content)
            client.log_artifacts(run_id, scratch, BUNDLE_ARTIFACT_PATH)
    except Exception as error:  # MLflow raises its own, OS and HTTP errors alike
        raise ExportError(f"cannot log the bundle to run {run_id}: {error}") from error
    return True


def export(test_path: Path, bundle_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Export the champion to `bundle_dir` unless it is already there; return what was done."""
    name = params["mlflow"]["registered_model"]
    mlflow.set_tracking_uri(mlflow_tracking_uri())
    client = MlflowClient()
    champion = champion_version(client, name)
    if champion is None:
        raise ExportError(
            f"no version of the registered model {name!r} has the alias {CHAMPION_ALIAS!r}: "
            "run the `evaluate` stage until a candidate passes the gate"
        )
    recover_interrupted_swap(bundle_dir)
    model_version = client.get_model_version(name, champion)
    if bundle_version(bundle_dir) == (name, champion):
        logged = log_bundle(client, model_version.run_id, read_bundle(bundle_dir))
        return {
            "exported": False,
            "logged": logged,
            "registered_model": name,
            "model_version": champion,
            "run_id": model_version.run_id,
        }

    model = mlflow.sklearn.load_model(f"models:/{name}/{champion}")
    run = client.get_run(model_version.run_id)
    schema = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/{FEATURE_SCHEMA_ARTIFACT}")
    names = [feature["name"] for feature in schema["features"]]
    features, _ = features_and_labels(pd.read_csv(test_path), params["data"]["target"])
    missing = sorted(set(names) - set(features.columns))
    if missing:
        raise ExportError(f"{test_path} lacks features the champion needs: {missing}")

    onnx_model = to_onnx(model, len(names))
    parity = check_parity(model, onnx_model, features[names])
    metadata = build_metadata(
        name=name,
        model_version=champion,
        run=run,
        schema=schema,
        classes=[str(label) for label in model.classes_],
        positive_label=run.data.tags.get("positive_label", str(params["data"]["positive_label"])),
        onnx_model=onnx_model,
        parity=parity,
    )
    files = {
        MODEL_FILE: onnx_model,
        METADATA_FILE: (json.dumps(metadata, indent=2) + "\n").encode("utf-8"),
    }
    # Logged first: if that fails, the served bundle has not changed yet.
    logged = log_bundle(client, run.info.run_id, files)
    replace_bundle(bundle_dir, files)
    return {
        "exported": True,
        "logged": logged,
        "registered_model": name,
        "model_version": champion,
        "run_id": run.info.run_id,
        **parity,
    }


@app.command()
def main(
    test_path: Path = TEST_FILE,
    bundle_dir: Path = BUNDLE_DIR,
    params_file: Path = PARAMS_FILE,
) -> None:
    """Export the champion model to the ONNX bundle."""
    params = load_params(params_file)
    try:
        result = export(test_path, bundle_dir, params)
    except (ExportError, FileNotFoundError, ValueError) as error:
        typer.echo(f"export: {error}; the bundle is unchanged", err=True)
        raise typer.Exit(1) from error
    model = f"{result['registered_model']} version {result['model_version']}"
    if result["exported"]:
        typer.echo(
            f"export: {model} -> {bundle_dir} (ONNX parity on {result['rows']} test rows, "
            f"max probability difference {result['max_probability_difference']:.1e})"
        )
    else:
        typer.echo(f"export: {bundle_dir} already holds {model}; left as it is")
    if result["logged"]:
        typer.echo(f"export: logged as {BUNDLE_ARTIFACT_PATH}/ of run {result['run_id']}")


if __name__ == "__main__":
    app()
