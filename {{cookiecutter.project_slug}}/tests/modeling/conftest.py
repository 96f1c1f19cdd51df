"""Shared set-up of the modelling tests.

Every test works in a temporary folder with its own data files and its own MLflow database
(`MLFLOW_TRACKING_URI=sqlite:///<tmp>/mlflow.db`); the project's params.yaml is read, never
written, and its data, models, reports and mlflow.db are never touched.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
import yaml

from {{ cookiecutter.module_name }}.config import (
    load_params,
)
from {{ cookiecutter.module_name }}.dataset import (
    builtin_dataset,
    write_raw,
)
from {{ cookiecutter.module_name }}.features import (
    split,
)
from {{ cookiecutter.module_name }}.modeling.evaluate import (
    Reports,
    evaluate,
)
from {{ cookiecutter.module_name }}.modeling.export import (
    export,
)
from {{ cookiecutter.module_name }}.modeling.train import (
    build_model,
    features_and_labels,
    train,
)


def pytest_configure(config):
    # MLflow's SQLite store trips a SQLAlchemy deprecation warning that only MLflow can fix.
    config.addinivalue_line(
        "filterwarnings", "ignore:The ``noload`` loader strategy:DeprecationWarning"
    )


@dataclass(frozen=True)
class Workspace:
    """The pipeline's files, laid out under a temporary folder."""

    root: Path
    params: dict[str, Any]

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def raw_metadata(self) -> Path:
        return self.root / "data" / "dataset.json"

    @property
    def train_file(self) -> Path:
        return self.root / "data" / "train.csv"

    @property
    def test_file(self) -> Path:
        return self.root / "data" / "test.csv"

    @property
    def candidate_dir(self) -> Path:
        return self.root / "models" / "candidate"

    @property
    def bundle_dir(self) -> Path:
        return self.root / "models" / "bundle"

    @property
    def emissions_file(self) -> Path:
        return self.root / "reports" / "emissions.csv"

    @property
    def reports(self) -> Reports:
        folder = self.root / "reports"
        return Reports(
            metrics_file=folder / "metrics.json",
            plots_dir=folder / "plots",
            figures_dir=folder / "figures",
            gate_file=folder / "gate.json",
        )

    def write_params(self, params: dict[str, Any]) -> Path:
        """A params.yaml for the command-line tests."""
        path = self.root / "params.yaml"
        path.write_text(yaml.safe_dump(params), encoding="utf-8")
        return path


def project_params() -> dict[str, Any]:
    """A private copy of the project's params.yaml, free to change in a test."""
    return copy.deepcopy(load_params())


def make_workspace(root: Path, params: dict[str, Any]) -> Workspace:
    """Write the raw data's metadata and the train/test splits, as the data stages would."""
    workspace = Workspace(root, params)
    target = params["data"]["target"]
    frame = builtin_dataset(target)
    write_raw(frame, root / "data" / "dataset.csv", workspace.raw_metadata, "builtin")
    train_split, test_split = split(
        frame, target, params["features"]["test_size"], params["features"]["random_state"]
    )
    train_split.to_csv(workspace.train_file, index=False)
    test_split.to_csv(workspace.test_file, index=False)
    return workspace


@pytest.fixture
def params() -> dict[str, Any]:
    return project_params()


@pytest.fixture(scope="session")
def splits() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The builtin data's train and test splits, as the `features` stage makes them."""
    params = project_params()
    target = params["data"]["target"]
    return split(
        builtin_dataset(target),
        target,
        params["features"]["test_size"],
        params["features"]["random_state"],
    )


@pytest.fixture(scope="session")
def fitted_model(splits):
    """The configured model fitted on the train split, without MLflow or CodeCarbon."""
    params = project_params()
    features, labels = features_and_labels(splits[0], params["data"]["target"])
    return build_model(params["train"]).fit(features, labels)


@contextmanager
def tracking_at(uri: str) -> Iterator[None]:
    """Point the stages (through MLFLOW_TRACKING_URI) and MLflow's global URI at `uri`; put both
    back afterwards, so no test sees another's database."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(None)  # forget it; the patch then restores the variable


@pytest.fixture
def workspace(tmp_path, params) -> Iterator[Workspace]:
    """An empty pipeline (data files only) with its own MLflow database."""
    space = make_workspace(tmp_path, params)
    with tracking_at(space.tracking_uri):
        yield space


@pytest.fixture(scope="session")
def champion_workspace_once(tmp_path_factory) -> Workspace:
    """A pipeline run once through train, evaluate and export: version 1 is the champion and
    the bundle holds it. Tests may add versions but must not move the alias."""
    params = project_params()
    space = make_workspace(tmp_path_factory.mktemp("champion"), params)
    with tracking_at(space.tracking_uri):
        train(
            space.train_file, space.raw_metadata, space.candidate_dir, space.emissions_file, params
        )
        gate = evaluate(space.candidate_dir, space.test_file, params, space.reports)
        assert gate["promoted"], gate["reasons"]
        export(space.test_file, space.bundle_dir, params)
    return space


@pytest.fixture
def champion_workspace(champion_workspace_once) -> Iterator[Workspace]:
    """The session's champion pipeline, with MLflow pointed at its database."""
    with tracking_at(champion_workspace_once.tracking_uri):
        yield champion_workspace_once


def read_folder(folder: Path) -> dict[str, bytes]:
    """Every file of `folder` by relative path, to compare a folder byte for byte."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def folder_bytes():
    """`folder_bytes(path)`: a folder's files and contents, to check it did not change."""
    return read_folder


@pytest.fixture
def train_candidate():
    """`train_candidate(workspace, params, name)`: train into models/<name>; return the folder."""

    def train_into(workspace: Workspace, params: dict[str, Any], name: str) -> Path:
        candidate_dir = workspace.root / "models" / name
        train(
            workspace.train_file,
            workspace.raw_metadata,
            candidate_dir,
            workspace.emissions_file,
            params,
        )
        return candidate_dir

    return train_into
