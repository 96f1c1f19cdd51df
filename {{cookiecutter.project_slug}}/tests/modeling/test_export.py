"""The `export` stage: ONNX conversion, the parity check, and the bundle's atomic replacement."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import joblib
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.utils.file_utils import local_file_uri_to_path
from typer.testing import CliRunner

from {{ cookiecutter.module_name }}.modeling import (
    export as export_stage,
)
from {{ cookiecutter.module_name }}.modeling.export import (
    BUNDLE_ARTIFACT_PATH,
    LABEL_OUTPUT,
    PROBABILITIES_OUTPUT,
    ExportError,
    check_parity,
    export,
    replace_bundle,
    to_onnx,
)
from {{ cookiecutter.module_name }}.modeling.train import (
    MODEL_FILE,
    build_model,
    features_and_labels,
)

METADATA_KEYS = {
    "format_version",
    "created_at",
    "registered_model",
    "model_version",
    "run_id",
    "data_sha256",
    "target",
    "positive_label",
    "classes",
    "features",
    "metrics",
    "onnx",
    "parity",
    "libraries",
}


def export_command(space, bundle_dir: Path):
    return CliRunner().invoke(
        export_stage.app,
        [
            "--test-path", str(space.test_file),
            "--bundle-dir", str(bundle_dir),
            "--params-file", str(space.write_params(space.params)),
        ],
    )  # fmt: skip


def old_bundle(folder: Path) -> Path:
    """A stand-in for a bundle served before; export must replace all of it or none."""
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"old model")
    (folder / "metadata.json").write_text('{"model_version": 0}', encoding="utf-8")
    return folder


def test_onnx_model_agrees_with_scikit_learn(params, splits, fitted_model):
    features, _ = features_and_labels(splits[1], params["data"]["target"])
    onnx_model = to_onnx(fitted_model, features.shape[1])
    session = ort.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    assert [output.name for output in session.get_outputs()] == [
        LABEL_OUTPUT,
        PROBABILITIES_OUTPUT,
    ]
    parity = check_parity(fitted_model, onnx_model, features)
    assert parity["rows"] == len(features)
    assert parity["max_probability_difference"] <= parity["tolerance"]


def test_parity_check_catches_a_different_model(params, splits, fitted_model):
    features, labels = features_and_labels(splits[0], params["data"]["target"])
    other = build_model({**params["train"], "model": "logistic_regression", "C": 0.001})
    onnx_model = to_onnx(other.fit(features, labels), features.shape[1])
    with pytest.raises(ExportError, match="disagree"):
        check_parity(fitted_model, onnx_model, features)


def test_bundle_is_replaced_whole(tmp_path):
    bundle = old_bundle(tmp_path / "bundle")
    replace_bundle(bundle, {"model.onnx": b"new model", "metadata.json": b"{}"})
    assert (bundle / "model.onnx").read_bytes() == b"new model"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle"]


def test_failed_swap_keeps_the_old_bundle(tmp_path, monkeypatch, folder_bytes):
    bundle = old_bundle(tmp_path / "bundle")
    before = folder_bytes(bundle)
    rename = Path.rename

    def rename_failing_into_place(self, target):
        if Path(target) == bundle and ".new-" in self.name:
            raise OSError("disk full")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", rename_failing_into_place)
    with pytest.raises(OSError, match="disk full"):
        replace_bundle(bundle, {"model.onnx": b"new model", "metadata.json": b"{}"})
    assert folder_bytes(bundle) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle"]


def test_swap_interrupted_between_renames_is_undone(tmp_path, folder_bytes):
    bundle = tmp_path / "bundle"
    waiting = old_bundle(tmp_path / ".bundle.previous")  # the state after the first rename
    before = folder_bytes(waiting)
    (tmp_path / ".bundle.new-abc").mkdir()
    export_stage.recover_interrupted_swap(bundle)
    assert folder_bytes(bundle) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle"]


@pytest.mark.slow
def test_bundle_serves_with_onnx_runtime_alone(champion_workspace):
    """What the prediction service does: metadata.json and model.onnx, nothing else."""
    space = champion_workspace
    metadata = json.loads((space.bundle_dir / "metadata.json").read_text(encoding="utf-8"))
    assert set(metadata) == METADATA_KEYS
    assert metadata["model_version"] == 1
    assert metadata["positive_label"] in metadata["classes"]
    assert all(feature["min"] <= feature["max"] for feature in metadata["features"])

    onnx = metadata["onnx"]
    session = ort.InferenceSession(
        str(space.bundle_dir / onnx["file"]), providers=["CPUExecutionProvider"]
    )
    test = pd.read_csv(space.test_file)
    rows = np.array(
        [[row[feature["name"]] for feature in metadata["features"]] for _, row in test.iterrows()],
        dtype=onnx["input_dtype"],
    )
    labels, probabilities = session.run(
        [onnx["label_output"], onnx["probabilities_output"]], {onnx["input_name"]: rows}
    )
    positive = metadata["classes"].index(metadata["positive_label"])

    model = joblib.load(space.candidate_dir / MODEL_FILE)
    features, _ = features_and_labels(test, space.params["data"]["target"])
    np.testing.assert_array_equal(labels, model.predict(features))
    np.testing.assert_allclose(
        probabilities[:, positive], model.predict_proba(features)[:, positive], atol=1e-4
    )


@pytest.mark.slow
def test_bundle_holding_the_champion_is_left_alone(champion_workspace, folder_bytes):
    space = champion_workspace
    before = folder_bytes(space.bundle_dir)
    result = export(space.test_file, space.bundle_dir, space.params)
    assert not result["exported"]
    assert folder_bytes(space.bundle_dir) == before


def logged_bundle(space, tmp_path: Path) -> dict[str, bytes]:
    """The `bundle/` artifacts of the champion's run, by file name."""
    client = MlflowClient()
    run_id = client.get_model_version(space.params["mlflow"]["registered_model"], 1).run_id
    folder = Path(client.download_artifacts(run_id, BUNDLE_ARTIFACT_PATH, str(tmp_path)))
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.mark.slow
def test_bundle_is_logged_to_the_champion_run(champion_workspace, tmp_path, folder_bytes):
    """What a server fetching models:/<name>@champion from a tracking server downloads."""
    space = champion_workspace
    assert logged_bundle(space, tmp_path / "first") == folder_bytes(space.bundle_dir)
    result = export(space.test_file, space.bundle_dir, space.params)
    assert (result["exported"], result["logged"]) == (False, False)  # already there: idempotent


@pytest.mark.slow
def test_current_bundle_missing_from_the_run_is_logged(champion_workspace, tmp_path, folder_bytes):
    space = champion_workspace
    client = MlflowClient()
    run_id = client.get_model_version(space.params["mlflow"]["registered_model"], 1).run_id
    artifacts = Path(local_file_uri_to_path(client.get_run(run_id).info.artifact_uri))
    shutil.rmtree(artifacts / BUNDLE_ARTIFACT_PATH)
    before = folder_bytes(space.bundle_dir)

    result = export(space.test_file, space.bundle_dir, space.params)

    assert (result["exported"], result["logged"]) == (False, True)
    assert folder_bytes(space.bundle_dir) == before
    assert logged_bundle(space, tmp_path) == before


@pytest.mark.slow
def test_failed_logging_leaves_the_previous_bundle(
    champion_workspace, tmp_path, monkeypatch, folder_bytes
):
    space = champion_workspace
    bundle = old_bundle(tmp_path / "bundle")
    before = folder_bytes(bundle)

    def unreachable(*_arguments, **_options):
        raise OSError("tracking server unreachable (simulated)")

    monkeypatch.setattr(MlflowClient, "list_artifacts", unreachable)
    monkeypatch.setattr(MlflowClient, "log_artifacts", unreachable)
    result = export_command(space, bundle)

    assert result.exit_code == 1
    assert "cannot log the bundle" in result.output
    assert folder_bytes(bundle) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle"]


@pytest.mark.slow
def test_failed_parity_check_leaves_the_previous_bundle(
    champion_workspace, tmp_path, monkeypatch, folder_bytes
):
    space = champion_workspace
    bundle = old_bundle(tmp_path / "bundle")
    before = folder_bytes(bundle)

    def disagree(*_arguments):
        raise ExportError("ONNX and scikit-learn disagree (simulated)")

    monkeypatch.setattr(export_stage, "check_parity", disagree)
    result = export_command(space, bundle)

    assert result.exit_code == 1
    assert "disagree" in result.output
    assert folder_bytes(bundle) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle"]


@pytest.mark.slow
def test_export_without_champion_fails_cleanly(workspace):
    result = export_command(workspace, workspace.bundle_dir)
    assert result.exit_code == 1
    assert "champion" in result.output
    assert not workspace.bundle_dir.exists()
