"""Fixtures of the monitoring tests: a served model and its data, in a temporary folder.

`monitored` holds a bundle made the way the pipeline makes one (tests/small_bundle.py), without
MLflow, from the configured data, next to the train and test splits it was made from and a
params.yaml with the project's `drift` section, whose `min_rows` is lowered to the test split's
size when the data is small. The project's own data, models, reports and prediction log are
never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from small_bundle import small_bundle

from {{ cookiecutter.module_name }}.bundle import (
    BundleMetadata,
)
from {{ cookiecutter.module_name }}.params import (
    Params,
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
    def features(self) -> list[str]:
        return self.metadata.feature_names

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
    made = small_bundle(root, "monitored_model", version=2, trees=20, metrics={"accuracy": 0.95})
    made.train_split.to_csv(root / "train.csv", index=False)
    made.test_split.to_csv(root / "test.csv", index=False)
    drift = made.params.drift
    assert drift is not None
    smaller = drift.model_copy(update={"min_rows": min(drift.min_rows, len(made.test_split))})
    monitored = Monitored(
        root=root,
        params=made.params.model_copy(update={"drift": smaller}),
        bundle_dir=made.directory,
        train_file=root / "train.csv",
        test_file=root / "test.csv",
        metadata=made.metadata,
    )
    monitored.write_params()
    return monitored
