"""MLflow set up once: a broken store fails fast in one line; abandoned runs are closed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from {{ cookiecutter.module_name }}.modeling import (
    train as train_stage,
)
from {{ cookiecutter.module_name }}.tracking import (
    HOST_TAG,
    PID_TAG,
    connect,
)


def train_command(space):
    return CliRunner().invoke(
        train_stage.app,
        [
            "--train-path", str(space.train_file),
            "--metadata-path", str(space.raw_metadata),
            "--candidate-dir", str(space.root / "models" / "candidate"),
            "--emissions-file", str(space.emissions_file),
            "--params-file", str(space.write_params()),
        ],
    )  # fmt: skip


def one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    return lines[0]


def test_a_tracking_server_that_is_not_running_fails_at_once(workspace, monkeypatch):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    result = train_command(workspace)
    assert result.exit_code == 1
    line = one_line(result.stderr)
    assert line.startswith(f"train: the MLflow tracking server http://127.0.0.1:{port} does not")
    assert "connection refused" in line
    assert not (workspace.root / "models" / "candidate").exists()


def test_a_store_that_is_not_a_database_is_one_line(workspace):
    (workspace.root / "mlflow.db").write_bytes(b"this is not SQLite" * 100)
    result = train_command(workspace)
    assert result.exit_code == 1
    assert "file is not a database" in one_line(result.stderr)


@pytest.fixture
def read_only(workspace):
    """Make the workspace's MLflow store read-only, even for root (immutable), or skip."""
    database = workspace.root / "mlflow.db"
    connect()  # creates the database
    if os.geteuid() != 0:
        database.chmod(0o444)
        yield database
        database.chmod(0o644)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(database)]).returncode != 0:
        pytest.skip("root ignores file modes, and chattr +i is not available here")
    try:
        yield database
    finally:
        subprocess.run([chattr, "-i", str(database)], check=True)


def test_a_read_only_store_is_one_line(workspace, read_only):
    result = train_command(workspace)
    assert result.exit_code == 1
    assert "is read-only for this user" in one_line(result.stderr)


def test_a_run_left_running_by_a_killed_stage_is_marked_failed(workspace):
    client = connect(workspace.params.mlflow.experiment)
    experiment = client.get_experiment_by_name(workspace.params.mlflow.experiment)
    finished = subprocess.Popen(["true"])
    finished.wait()
    host = socket.gethostname()
    abandoned = client.create_run(
        experiment.experiment_id, tags={HOST_TAG: host, PID_TAG: str(finished.pid)}
    )
    alive = client.create_run(
        experiment.experiment_id, tags={HOST_TAG: host, PID_TAG: str(os.getpid())}
    )
    elsewhere = client.create_run(
        experiment.experiment_id, tags={HOST_TAG: f"not-{host}", PID_TAG: str(finished.pid)}
    )

    connect(workspace.params.mlflow.experiment)  # what the next stage does first

    status = {run.info.run_id: MlflowClient().get_run(run.info.run_id).info.status
              for run in (abandoned, alive, elsewhere)}  # fmt: skip
    assert status[abandoned.info.run_id] == "FAILED"
    assert status[alive.info.run_id] == "RUNNING"
    assert status[elsewhere.info.run_id] == "RUNNING"
