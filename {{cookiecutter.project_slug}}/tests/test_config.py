"""The configuration module owns every path; these tests keep it honest."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.module_name }} import (
    config,
)

PATH_CONSTANTS = {
    name: value
    for name, value in vars(config).items()
    if name.isupper() and isinstance(value, Path)
}


def test_project_root_is_the_folder_with_pyproject():
    assert (config.PROJ_ROOT / "pyproject.toml").is_file()
    assert Path(config.__file__) == config.PROJ_ROOT / config.__name__.split(".")[0] / "config.py"


@pytest.mark.parametrize("name", sorted(PATH_CONSTANTS))
def test_every_path_is_absolute_and_inside_the_project(name):
    path = PATH_CONSTANTS[name]
    assert path.is_absolute()
    assert path.is_relative_to(config.PROJ_ROOT)


@pytest.mark.parametrize(
    "name",
    [
        "RAW_DATA_DIR",
        "INTERIM_DATA_DIR",
        "PROCESSED_DATA_DIR",
        "EXTERNAL_DATA_DIR",
        "MODELS_DIR",
        "FIGURES_DIR",
        "NOTEBOOKS_DIR",
        "REFERENCES_DIR",
        "DOCS_DIR",
    ],
)
def test_layout_folders_exist(name):
    assert getattr(config, name).is_dir()


def test_mlflow_defaults_to_sqlite_file_in_project(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = config.mlflow_tracking_uri()
    assert uri.startswith("sqlite:///")
    assert Path(uri.removeprefix("sqlite:///")) == config.PROJ_ROOT / "mlflow.db"


def test_mlflow_uri_comes_from_environment(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert config.mlflow_tracking_uri() == "http://127.0.0.1:5000"


def tool_settings(project: Path, environment: dict[str, str]) -> dict[str, str]:
    """The tool settings a process of `project` sees after importing the package."""
    code = (
        f"import json, os, {config.__name__.split('.')[0]} as package; "
        "print(json.dumps({k: os.environ[k] for k in package.config.TOOL_DEFAULTS}))"
    )
    env = {key: value for key, value in os.environ.items() if key not in config.TOOL_DEFAULTS}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env={**env, **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_tool_defaults_apply_and_dotenv_then_the_environment_override_them(tmp_path):
    package = config.PROJ_ROOT / config.__name__.split(".")[0]
    shutil.copytree(package, tmp_path / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    assert tool_settings(tmp_path, {}) == config.TOOL_DEFAULTS

    # Two strings, so detect-secrets does not read `NAME=value` lines as a secret.
    (tmp_path / ".env").write_text("MLFLOW_DISABLE_TELEMETRY=false\n" + "DO_NOT_TRACK=0\n")
    from_dotenv = tool_settings(tmp_path, {})
    assert from_dotenv["MLFLOW_DISABLE_TELEMETRY"] == "false"
    assert from_dotenv["DO_NOT_TRACK"] == "0"
    assert from_dotenv["GX_ANALYTICS_ENABLED"] == config.TOOL_DEFAULTS["GX_ANALYTICS_ENABLED"]

    assert tool_settings(tmp_path, {"DO_NOT_TRACK": "7"})["DO_NOT_TRACK"] == "7"
