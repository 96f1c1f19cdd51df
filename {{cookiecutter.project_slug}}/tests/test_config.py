"""The configuration module owns every path; these tests keep it honest."""

from pathlib import Path

import pytest

from {{ cookiecutter.module_name }} import config

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
