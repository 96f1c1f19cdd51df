"""A served model and its data in a temporary folder, as monitoring's tests use it (the fixture
`monitored` in tests/monitoring/conftest.py), and the drift command run on its files.

Test support, kept out of the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner, Result

from {{ cookiecutter.module_name }}.bundle import (
    BundleMetadata,
)
from {{ cookiecutter.module_name }}.monitoring import (
    drift,
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


def run_drift(monitored: Monitored, output: Path, *args: str) -> Result:
    """The drift command on the monitored model's files, writing in `output`; its result."""
    options = [
        "--reference", str(monitored.train_file),
        "--test-file", str(monitored.test_file),
        "--bundle-dir", str(monitored.bundle_dir),
        "--output-dir", str(output),
        "--params-file", str(monitored.params_file),
        "--log", str(output / "predictions.sqlite"),
        "--ground-truth", str(output / "ground_truth.csv"),
    ]  # fmt: skip
    return CliRunner().invoke(drift.app, [*options, *args])
