"""Shared set-up of the modelling tests.

Every test works in a temporary folder with its own data files and its own MLflow database
(`MLFLOW_TRACKING_URI=sqlite:///<tmp>/mlflow.db`); the project's params.yaml is read, never
written, and its data, models, reports and mlflow.db are never touched. The data is the
configured data (tests/tables.py), so these tests follow a team's own data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from tables import features_of, kinds, raw_frame, splits

from {{ cookiecutter.module_name }}.dataset import (
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
from {{ cookiecutter.module_name }}.modeling.promote import (
    Promotion,
    promote,
)
from {{ cookiecutter.module_name }}.modeling.train import (
    build_model,
    train,
)
from {{ cookiecutter.module_name }}.params import (
    Params,
    load_params,
)


@dataclass(frozen=True)
class Workspace:
    """The pipeline's files, laid out under a temporary folder."""

    root: Path
    params: Params

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
    def bundle_dir(self) -> Path:
        return self.root / "models" / "bundle"

    @property
    def emissions_file(self) -> Path:
        return self.root / "reports" / "emissions.csv"

    @property
    def reports(self) -> Reports:
        folder = self.root / "reports"
        return Reports(folder / "metrics.json", folder / "plots", folder / "figures")

    def write_params(self, params: Params | None = None) -> Path:
        """A params.yaml for the command-line tests."""
        path = self.root / "params.yaml"
        path.write_text(yaml.safe_dump((params or self.params).model_dump()), encoding="utf-8")
        return path

    def run_pipeline(self, params: Params | None = None, name: str = "candidate") -> Promotion:
        """train -> evaluate -> export -> promote, as DVC runs them; the candidate's folders
        are models/<name> and models/<name>_bundle."""
        params = params or self.params
        candidate_dir = self.root / "models" / name
        candidate_bundle = self.root / "models" / f"{name}_bundle"
        train(self.train_file, self.raw_metadata, candidate_dir, self.emissions_file, params)
        data = params.data
        evaluate(candidate_dir, self.test_file, data.target, data.positive_label, self.reports)
        export(candidate_dir, self.test_file, self.reports.metrics_file, candidate_bundle, params)
        return promote(candidate_bundle, self.bundle_dir, self.test_file, params)


def make_workspace(root: Path, params: Params) -> Workspace:
    """Write the raw data's metadata and the train/test splits, as the data stages would."""
    workspace = Workspace(root, params)
    frame = raw_frame()
    write_raw(frame, root / "data" / "dataset.csv", workspace.raw_metadata, params.data.source)
    train_split, test_split = split(frame, params.data.target, params.features)
    train_split.to_csv(workspace.train_file, index=False)
    test_split.to_csv(workspace.test_file, index=False)
    return workspace


@pytest.fixture
def params() -> Params:
    return load_params()


@pytest.fixture
def with_train() -> Callable[..., Params]:
    """`with_train(params, **changes)`: a copy of `params` with `train` settings changed."""

    def changed(params: Params, **changes) -> Params:
        return params.model_copy(update={"train": params.train.model_copy(update=changes)})

    return changed


@pytest.fixture(scope="session")
def data_splits() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The configured data's train and test splits, as the `features` stage makes them."""
    return splits()


@pytest.fixture(scope="session")
def fitted_model(data_splits):
    """The configured model fitted on the train split, without MLflow or CodeCarbon."""
    params = load_params()
    features, labels = features_of(data_splits[0])
    return build_model(params.train, kinds()).fit(features, labels)


@contextmanager
def tracking_at(uri: str) -> Iterator[None]:
    """Point the stages (through MLFLOW_TRACKING_URI) and MLflow's global URI at `uri`; put both
    back afterwards, so no test sees another's database."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.delenv("DVC_EXP_NAME", raising=False)
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
    """A pipeline run once through train, evaluate, export and promote: version 1 is the
    champion and models/bundle holds it. Tests may add versions but must not move the alias."""
    space = make_workspace(tmp_path_factory.mktemp("champion"), load_params())
    with tracking_at(space.tracking_uri):
        decision = space.run_pipeline()
        assert decision.promoted, decision.reasons
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
def folder_bytes() -> Callable[[Path], dict[str, bytes]]:
    """`folder_bytes(path)`: a folder's files and contents, to check it did not change."""
    return read_folder
