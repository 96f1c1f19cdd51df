"""Serving the bundle of a registered model from an MLflow tracking server (API_MODEL_URI).

The slow tests start a real `mlflow server` (SQLite store and proxied artifacts in a temporary
folder, a free loopback port), log bundles to runs the way the `export` stage does and register
them with a `champion` alias. The other tests need no server: wrong settings, a closed port, a
server that never answers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.module_name }}.api.main import (
    create_app,
)
from {{ cookiecutter.module_name }}.api.registry import (
    BUNDLE_ARTIFACT_PATH,
    auth_headers,
)
from {{ cookiecutter.module_name }}.api.settings import (
    Settings,
)

CHAMPION = "champion"


@pytest.fixture(scope="module")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int]
) -> Iterator[str]:
    """The URL of a throw-away `mlflow server` on 127.0.0.1, stopped after the module."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination", str(folder / "artifacts"),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--workers", "1",
        ],
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"},
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: it runs uvicorn and a job runner
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited:\n{(folder / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow server did not answer /health within 180 s")
            time.sleep(0.2)
        yield url
    finally:
        for signal_number, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, signal_number)
                process.wait(timeout=wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def register(url: str, bundle: Path, name: str, edit=None) -> tuple[str, int]:
    """Log `bundle` to a new run as `export` does, register the run as `name` and give that
    version the champion alias; `edit(metadata, model_bytes)` may spoil the bundle first."""
    from mlflow import MlflowClient

    from {{ cookiecutter.module_name }}.modeling import (
        export,
    )

    client = MlflowClient(tracking_uri=url)
    run_id = client.create_run(client.create_experiment(f"{name}-runs")).info.run_id
    files = export.read_bundle(bundle)
    metadata = json.loads(files[export.METADATA_FILE])
    # A new registered model: its first version is 1.
    metadata.update(registered_model=name, model_version=1, run_id=run_id)
    model = files[export.MODEL_FILE]
    if edit is not None:
        model = edit(metadata, model)
    files = {export.MODEL_FILE: model, export.METADATA_FILE: json.dumps(metadata).encode()}
    assert export.log_bundle(client, run_id, files)
    client.create_registered_model(name)
    version = client.create_model_version(
        name, f"runs:/{run_id}/{BUNDLE_ARTIFACT_PATH}", run_id=run_id
    )
    client.set_registered_model_alias(name, CHAMPION, version.version)
    assert int(version.version) == 1
    return run_id, 1


def registry_settings(api_settings, tmp_path: Path, uri: str, tracking_uri: str, **changes):
    """The test settings, serving `uri` instead of a bundle folder (which does not exist)."""
    return api_settings.model_copy(
        update={
            "model_uri": uri,
            "tracking_uri": tracking_uri,
            "model_cache_dir": tmp_path / "cache",
            "bundle_dir": tmp_path / "no-bundle-here",
            **changes,
        }
    )


def not_ready_reason(settings) -> str:
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert client.get("/model").status_code == 503
        return ready.json()["reason"]


# --- against a real tracking server ------------------------------------------------------------


@pytest.mark.slow
def test_alias_serves_the_registered_bundle(
    mlflow_server, api_bundle, api_settings, tmp_path, caplog
):
    run_id, version = register(mlflow_server, api_bundle.directory, "served_model")
    uri = f"models:/served_model@{CHAMPION}"
    settings = registry_settings(api_settings, tmp_path, uri, mlflow_server)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.json()
        assert ready.json()["model_version"] == version
        model = client.get("/model").json()
        assert (model["registered_model"], model["model_version"]) == ("served_model", version)
        assert model["run_id"] == run_id
        for record, label in zip(api_bundle.records[:5], api_bundle.labels, strict=False):
            answer = client.post("/predict", json=record)
            assert answer.status_code == 200, answer.text
            assert answer.json()["label"] == label
            assert answer.json()["model_version"] == version

    [cached] = (tmp_path / "cache" / "served_model").iterdir()
    assert cached.name.startswith(f"v{version}-")
    original = (api_bundle.directory / "model.onnx").read_bytes()
    assert (cached / "model.onnx").read_bytes() == original

    caplog.clear()  # a restart finds the same bundle in the cache and downloads no model
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").status_code == 200
    assert any("cached" in record.getMessage() for record in caplog.records)


@pytest.mark.slow
def test_version_number_works_like_an_alias(mlflow_server, api_bundle, api_settings, tmp_path):
    register(mlflow_server, api_bundle.directory, "pinned_model")
    uri = "models:/pinned_model/1"
    settings = registry_settings(api_settings, tmp_path, uri, mlflow_server)
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").json()["model_version"] == 1


@pytest.mark.slow
def test_unknown_alias_is_not_ready_and_says_why(
    mlflow_server, api_bundle, api_settings, tmp_path, caplog
):
    register(mlflow_server, api_bundle.directory, "aliased_model")
    uri = "models:/aliased_model@nonexistent"
    reason = not_ready_reason(registry_settings(api_settings, tmp_path, uri, mlflow_server))
    assert uri in reason
    assert "alias nonexistent not found" in reason
    assert any(reason in record.getMessage() for record in caplog.records)


@pytest.mark.slow
def test_unknown_model_is_not_ready(mlflow_server, api_settings, tmp_path):
    uri = f"models:/never_registered@{CHAMPION}"
    reason = not_ready_reason(registry_settings(api_settings, tmp_path, uri, mlflow_server))
    assert "never_registered not found" in reason


def damage_model(metadata: dict, model: bytes) -> bytes:
    return model[:-10]


def describe_another_version(metadata: dict, model: bytes) -> bytes:
    metadata["model_version"] = 7
    return model


@pytest.mark.slow
@pytest.mark.parametrize(
    ("edit", "reason"),
    [(damage_model, "sha256"), (describe_another_version, "describes damaged_model version 7")],
    ids=["checksum", "other-version"],
)
def test_logged_bundle_that_does_not_match_is_refused(
    mlflow_server, api_bundle, api_settings, tmp_path, edit, reason
):
    name = f"damaged_model_{edit.__name__}"
    register(mlflow_server, api_bundle.directory, name, edit=edit)
    uri = f"models:/{name}@{CHAMPION}"
    found = not_ready_reason(registry_settings(api_settings, tmp_path, uri, mlflow_server))
    assert reason.replace("damaged_model", name) in found
    cache = tmp_path / "cache"
    assert not [path for path in cache.rglob("*") if path.is_file()]  # nothing half-downloaded


@pytest.mark.slow
def test_unwritable_cache_is_not_ready(mlflow_server, api_bundle, api_settings, tmp_path):
    register(mlflow_server, api_bundle.directory, "uncached_model")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    uri = f"models:/uncached_model@{CHAMPION}"
    settings = registry_settings(
        api_settings, tmp_path, uri, mlflow_server, model_cache_dir=blocker / "cache"
    )
    assert "cannot write the downloaded bundle" in not_ready_reason(settings)


# --- without a server --------------------------------------------------------------------------


def test_model_uri_needs_a_tracking_server(api_settings, tmp_path):
    settings = registry_settings(
        api_settings, tmp_path, f"models:/m@{CHAMPION}", "sqlite:///mlflow.db"
    )
    assert "needs an MLflow tracking server" in not_ready_reason(settings)


def test_malformed_model_uri_is_not_ready(api_settings, tmp_path):
    settings = registry_settings(api_settings, tmp_path, "runs:/abc/model", "http://127.0.0.1:1")
    assert "is not of the form models:/<name>@<alias>" in not_ready_reason(settings)


def test_unreachable_server_is_not_ready(api_settings, tmp_path, free_port):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = registry_settings(api_settings, tmp_path, f"models:/m@{CHAMPION}", closed)
    assert f"cannot reach the MLflow tracking server at {closed}" in not_ready_reason(settings)


def test_server_that_never_answers_costs_one_bounded_wait(api_settings, tmp_path):
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        settings = registry_settings(
            api_settings, tmp_path, f"models:/m@{CHAMPION}", url, model_timeout_seconds=0.5
        )
        started = time.monotonic()
        reason = not_ready_reason(settings)
    # A liveness guard, not a latency check: without the timeout this would never end.
    assert time.monotonic() - started < 30
    assert "did not answer within API_MODEL_TIMEOUT_SECONDS (0.5 s)" in reason


def test_server_that_does_not_speak_http_is_not_ready(api_settings, tmp_path):
    with socket.socket() as garbage:
        garbage.bind(("127.0.0.1", 0))
        garbage.listen(8)

        def answer_garbage() -> None:
            connection, _ = garbage.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")

        worker = threading.Thread(target=answer_garbage, daemon=True)
        worker.start()
        url = f"http://127.0.0.1:{garbage.getsockname()[1]}"
        settings = registry_settings(api_settings, tmp_path, f"models:/m@{CHAMPION}", url)
        assert "cannot reach the MLflow tracking server" in not_ready_reason(settings)
        worker.join(timeout=10)


def test_settings_read_mlflow_variables(monkeypatch):
    monkeypatch.setenv("API_MODEL_URI", f"models:/m@{CHAMPION}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.example.org")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "secret-token")
    settings = Settings()
    assert (settings.model_uri, settings.tracking_uri) == (
        f"models:/m@{CHAMPION}",
        "https://mlflow.example.org",
    )
    assert auth_headers(settings) == {"Authorization": "Bearer secret-token"}
    assert "secret-token" not in repr(settings)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "user")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pass")
    assert auth_headers(Settings()) == {"Authorization": "Basic dXNlcjpwYXNz"}
