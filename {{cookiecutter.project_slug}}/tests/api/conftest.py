"""Fixtures of the prediction-service tests.

`api_bundle` is a small bundle made the way the `export` stage makes one, through the export
module's own functions, so a change of the bundle format reaches these tests. It does not need
the pipeline to have run.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from {{ cookiecutter.module_name }}.config import (
    load_params,
)

MODEL_VERSION = 3
REGISTERED_MODEL = "test_model"
DATA_SHA256 = "d" * 64


@dataclass(frozen=True)
class ApiBundle:
    directory: Path
    examples_file: Path
    features: list[str]
    classes: list[str]
    records: list[dict[str, float]]  # rows of the dataset, as request bodies
    labels: list[str]  # scikit-learn's predictions for `records`
    registered_model: str = REGISTERED_MODEL
    model_version: int = MODEL_VERSION
    data_sha256: str = DATA_SHA256

    def copy_to(self, folder: Path) -> Path:
        """A private copy of the bundle, for tests that damage it."""
        return Path(shutil.copytree(self.directory, folder / "bundle"))


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """A function giving a loopback port nobody listens on now, for servers the tests start."""

    def pick() -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    return pick


@pytest.fixture(scope="session")
def api_bundle(tmp_path_factory: pytest.TempPathFactory) -> ApiBundle:
    # The pipeline's stack is imported here only: the service itself never needs it.
    from {{ cookiecutter.module_name }}.dataset import (
        builtin_dataset,
    )
    from {{ cookiecutter.module_name }}.modeling import (
        export,
    )
    from {{ cookiecutter.module_name }}.modeling.train import (
        build_model,
        feature_schema,
        features_and_labels,
    )

    data_params = load_params()["data"]
    target = data_params["target"]
    frame = builtin_dataset(target)
    features, labels = features_and_labels(frame, target)
    model = build_model(
        {"model": "random_forest", "n_estimators": 10, "max_depth": 4, "C": 1.0, "random_state": 0}
    ).fit(features, labels)
    onnx_model = export.to_onnx(model, features.shape[1])
    sample = features.head(20)
    run = SimpleNamespace(  # what build_metadata reads from an MLflow run
        info=SimpleNamespace(run_id="test-run"),
        data=SimpleNamespace(
            metrics={"test_accuracy": 0.95, "test_f1": 0.94, "train_accuracy": 0.99},
            tags={"data_sha256": DATA_SHA256},
        ),
    )
    metadata = export.build_metadata(
        name=REGISTERED_MODEL,
        model_version=MODEL_VERSION,
        run=run,
        schema=feature_schema(features, target),
        classes=[str(label) for label in model.classes_],
        positive_label=str(data_params["positive_label"]),
        onnx_model=onnx_model,
        parity=export.check_parity(model, onnx_model, sample),
    )
    folder = tmp_path_factory.mktemp("api")
    bundle_dir = folder / "bundle"
    export.replace_bundle(
        bundle_dir,
        {
            export.MODEL_FILE: onnx_model,
            export.METADATA_FILE: json.dumps(metadata, indent=2).encode("utf-8"),
        },
    )
    examples_file = folder / "test.csv"
    frame.head(40).to_csv(examples_file, index=False)
    return ApiBundle(
        directory=bundle_dir,
        examples_file=examples_file,
        features=list(features.columns),
        classes=metadata["classes"],
        records=sample.to_dict("records"),
        labels=[str(label) for label in model.predict(sample)],
    )


@pytest.fixture
def no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever `.env` says, these tests run without a prediction cache."""
    monkeypatch.setenv("API_CACHE_URL", "")


@pytest.fixture
def api_settings(api_bundle: ApiBundle, no_cache: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    from {{ cookiecutter.module_name }}.api.settings import (
        Settings,
    )

    monkeypatch.setenv("API_MODEL_URI", "")  # the test bundle, whatever `.env` names

    return Settings(
        bundle_dir=api_bundle.directory, examples_file=api_bundle.examples_file, max_batch_size=8
    )


@pytest.fixture
def client(api_settings: Any) -> Iterator[Any]:
    """A test client of a started app (lifespan run, model loaded)."""
    from fastapi.testclient import TestClient

    from {{ cookiecutter.module_name }}.api.main import (
        create_app,
    )

    with TestClient(create_app(api_settings)) as test_client:
        yield test_client
