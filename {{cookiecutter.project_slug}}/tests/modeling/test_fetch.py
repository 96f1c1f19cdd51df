"""`make fetch-model`: a registered version's bundle, downloaded and checked by the contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.utils.file_utils import local_file_uri_to_path
from typer.testing import CliRunner

from {{ cookiecutter.module_name }}.bundle import (
    BundleError,
    read_verified,
)
from {{ cookiecutter.module_name }}.config import (
    BUNDLE_ARTIFACT,
)
from {{ cookiecutter.module_name }}.modeling import (
    fetch as fetch_command,
)
from {{ cookiecutter.module_name }}.modeling.fetch import (
    fetch,
)

pytestmark = pytest.mark.slow


def test_the_champion_is_fetched_as_served(champion_workspace, tmp_path, folder_bytes):
    space = champion_workspace
    result = CliRunner().invoke(
        fetch_command.app,
        ["--destination", str(tmp_path / "fetched"), "--params-file", str(space.write_params())],
    )
    assert result.exit_code == 0, result.output
    assert folder_bytes(tmp_path / "fetched") == folder_bytes(space.bundle_dir)
    name = space.params.mlflow.registered_model
    assert f"models:/{name}@champion is {read_verified(space.bundle_dir).identity}" in result.output


def test_a_version_number_works_too(champion_workspace, tmp_path):
    name = champion_workspace.params.mlflow.registered_model
    assert fetch(f"models:/{name}/1", tmp_path / "v1").identity.version == 1


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("models:/{name}@nobody", "alias nobody not found"),
        ("models:/{name}/999", "999"),
        ("runs:/abc/model", "models:/"),
    ],
)
def test_a_bad_uri_is_one_line(champion_workspace, tmp_path, uri, message):
    name = champion_workspace.params.mlflow.registered_model
    result = CliRunner().invoke(
        fetch_command.app, [uri.format(name=name), "--destination", str(tmp_path / "out")]
    )
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_a_damaged_logged_bundle_is_refused(champion_workspace, tmp_path):
    space = champion_workspace
    identity = read_verified(space.bundle_dir).identity
    run = MlflowClient().get_run(identity.run_id)
    logged = Path(local_file_uri_to_path(run.info.artifact_uri)) / BUNDLE_ARTIFACT / "model.onnx"
    original = logged.read_bytes()
    try:
        logged.write_bytes(b"corrupted in storage")
        with pytest.raises(BundleError, match="damaged or half-copied"):
            fetch(f"models:/{identity.registered_model}@champion", tmp_path / "out")
    finally:
        logged.write_bytes(original)
    assert not (tmp_path / "out").exists()
