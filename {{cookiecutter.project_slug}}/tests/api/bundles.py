"""The bundle the prediction-service tests serve, and its fixtures (imported by conftest.py).

`api_bundle` is a small bundle made the way the pipeline makes one (tests/small_bundle.py), so a
change of the bundle format reaches these tests, trained on the configured data. `mixed_bundle`
is one trained on a made-up table with numeric, category and text columns, so the service's
handling of every kind of input is tested whatever the project's data holds.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

MODEL_VERSION = 3
REGISTERED_MODEL = "test_model"


@dataclass(frozen=True)
class ApiBundle:
    directory: Path
    examples_file: Path
    features: list[str]
    classes: list[str]
    ranges: dict[str, tuple[float, float]]  # training min and max of each numeric feature
    categories: dict[str, list[str]]  # values seen in training of each category feature
    texts: list[str]  # the text features
    records: list[dict[str, Any]]  # rows of the training split, as request bodies
    labels: list[str]  # scikit-learn's predictions for `records`
    registered_model: str = REGISTERED_MODEL
    model_version: int = MODEL_VERSION

    def copy_to(self, folder: Path) -> Path:
        """A private copy of the bundle, for tests that damage it."""
        return Path(shutil.copytree(self.directory, folder / "bundle"))

    def rows(self) -> list[tuple[Any, ...]]:
        """`records` as the model's rows: values in feature order."""
        return [tuple(record[name] for name in self.features) for record in self.records]

    def single(self, index: int = 0) -> dict[str, Any]:
        """The arguments of a test client's POST to /predict of the `index`-th record."""
        return {"json": self.records[index]}

    def same_again(self, index: int = 0) -> dict[str, Any]:
        """The `index`-th record sent differently (its keys in another order), same values."""
        return {"json": dict(reversed(list(self.records[index].items())))}

    def body(self, index: int = 0) -> tuple[bytes, str]:
        """The body of a POST to /predict of the `index`-th record, and its content type."""
        return json.dumps(self.records[index]).encode(), "application/json"

    def several(self, indexes: list[int]) -> dict[str, Any]:
        """The arguments of a POST to /predict/batch of those records."""
        return {"json": {"records": [self.records[index] for index in indexes]}}

    def refused(self) -> tuple[tuple[bytes, str], int]:
        """A body /predict refuses, and its status (422): the first record with its first
        numeric feature far outside its training range (counted as out of range), or, on a
        model without numbers, without its first feature."""
        record = dict(self.records[0])
        if self.ranges:
            name, (low, high) = next(iter(self.ranges.items()))
            record[name] = high + 100 * (high - low)
        else:
            del record[self.features[0]]
        return (json.dumps(record).encode(), "application/json"), 422

    @property
    def numeric(self) -> list[str]:
        """The numeric features; a test that needs one skips itself on a model without any."""
        if not self.ranges:
            pytest.skip("the model has no numeric feature")
        return list(self.ranges)


def api_bundle_of(folder: Path, data: Any = None) -> ApiBundle:
    # The pipeline's stack is imported here only: the service itself never needs it.
    from small_bundle import small_bundle

    made = small_bundle(
        folder, REGISTERED_MODEL, MODEL_VERSION, trees=10, metrics={"accuracy": 0.95}, data=data
    )
    examples_file = folder / "test.csv"
    made.test_split.to_csv(examples_file, index=False)
    sample = made.typed(made.train_split).head(20)
    features = made.metadata.features
    return ApiBundle(
        directory=made.directory,
        examples_file=examples_file,
        features=made.features,
        classes=made.metadata.classes,
        ranges={f.name: (f.min, f.max) for f in features if f.kind == "numeric"},
        categories={f.name: f.categories for f in features if f.kind == "category"},
        texts=[f.name for f in features if f.kind == "text"],
        records=sample.to_dict("records"),
        labels=[str(label) for label in made.model.predict(sample)],
    )


@pytest.fixture(scope="session")
def api_bundle(tmp_path_factory: pytest.TempPathFactory) -> ApiBundle:
    return api_bundle_of(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="session")
def mixed_bundle(tmp_path_factory: pytest.TempPathFactory) -> ApiBundle:
    from tables import mixed_frame

    return api_bundle_of(tmp_path_factory.mktemp("mixed"), mixed_frame())


@pytest.fixture
def mixed_settings(api_settings: Any, mixed_bundle: ApiBundle) -> Any:
    """The settings of `api_settings`, serving `mixed_bundle`."""
    return api_settings.model_copy(
        update={"bundle_dir": mixed_bundle.directory, "examples_file": mixed_bundle.examples_file}
    )
