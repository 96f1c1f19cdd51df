"""Fixtures of the monitoring tests of an image model: a served model and its pictures, in a
temporary folder.

`monitored` holds an image bundle (tests/digits_bundle.py: scikit-learn's 8 x 8 digits as PNG
files, an MLP converted to ONNX) next to the train and test manifests it was made from and a
params.yaml with the project's `drift` section, whose `min_rows` is lowered to 100. The
project's own data, models, reports and prediction log are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from digits_bundle import digits_bundle

from {{ cookiecutter.module_name }}.bundle import (
    BundleMetadata,
)
from {{ cookiecutter.module_name }}.params import (
    Params,
    load_params,
)


@dataclass(frozen=True)
class Monitored:
    root: Path
    params: Params
    bundle_dir: Path
    train_file: Path
    test_file: Path
    metadata: BundleMetadata

    @property
    def target(self) -> str:
        return self.metadata.target

    @property
    def params_file(self) -> Path:
        return self.root / "params.yaml"

    def write_params(self, **drift: object) -> Path:
        """params.yaml with the `drift` settings changed."""
        document = self.params.model_dump()
        document["drift"].update(drift)
        self.params_file.write_text(yaml.safe_dump(document), encoding="utf-8")
        return self.params_file

    def test_split(self) -> pd.DataFrame:
        return pd.read_csv(self.test_file, dtype=str)


@pytest.fixture(scope="session")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Monitored:
    root = tmp_path_factory.mktemp("monitoring")
    params = load_params()
    made = digits_bundle(root, params.data.target)
    drift = params.drift
    assert drift is not None
    monitored = Monitored(
        root=root,
        params=params.model_copy(update={"drift": drift.model_copy(update={"min_rows": 100})}),
        bundle_dir=made.directory,
        train_file=made.train_file,
        test_file=made.test_file,
        metadata=made.metadata,
    )
    monitored.write_params()
    return monitored
