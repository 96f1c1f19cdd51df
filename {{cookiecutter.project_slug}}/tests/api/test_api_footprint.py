"""The service's footprint: it answers without importing any library of the pipeline, and the
`serve` dependency group alone installs and runs it (the container installs that group only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from served import Served

from {{ cookiecutter.module_name }}.config import (
    PROJ_ROOT,
)

# The pipeline's libraries: the service must work without any of them installed.
PIPELINE_STACK = (
    "pandas",
    "sklearn",
    "scipy",
    "mlflow",
    "great_expectations",
{%- if cookiecutter.use_monitoring %}
    "evidently",
{%- endif %}
    "skl2onnx",
    "onnx",
    "matplotlib",
    "codecarbon",
    "dvc",
)


def test_serving_imports_no_pipeline_library(api_bundle):
    single, several = api_bundle.single(0), api_bundle.several([0, 1])
    code = f"""
import sys
from fastapi.testclient import TestClient
from {{ cookiecutter.module_name }}.api.main import create_app
from {{ cookiecutter.module_name }}.api.settings import Settings
settings = Settings(bundle_dir={str(api_bundle.directory)!r})
with TestClient(create_app(settings)) as client:
    assert client.post("/predict", **{single!r}).status_code == 200
    assert client.post("/predict/batch", **{several!r}).status_code == 200
    assert client.get("/docs").status_code == 200
print(",".join(m for m in {PIPELINE_STACK!r} if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


@pytest.mark.slow
def test_serve_group_alone_installs_and_serves(tmp_path, api_bundle):
    """`uv sync --no-default-groups --group serve` is enough to run the service."""
    uv = Path(sys.executable).with_name("uv")  # the dev group's uv, in this environment
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [uv, "sync", "--quiet", "--no-default-groups", "--group", "serve"],
        cwd=PROJ_ROOT,
        env=env,
        check=True,
    )
    python = venv / "bin" / "python"
    probe = f"import importlib.util as u; print([m for m in {PIPELINE_STACK!r} if u.find_spec(m)])"
    installed = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    assert installed.stdout.strip() == "[]"

    server = Served(
        {**env, "API_BUNDLE_DIR": str(api_bundle.directory)},
        tmp_path / "uvicorn.log",
        python=python,
        cwd=tmp_path,
    )
    try:
        server.wait()
        status, answer = server.send(api_bundle.body(0))
        assert (status, json.loads(answer)["label"]) == (200, api_bundle.labels[0])
    finally:
        server.stop()
