"""A small bundle made the way the pipeline makes one, for the service's and monitoring's tests.

Test support, kept out of the package. It goes through the package's own functions (the
`features` split, `build_model`, `to_onnx`, `check_parity`, `build_metadata`, `bundle.write`), so a
change of the bundle format reaches every test that serves or watches a model. It needs neither
the pipeline's files nor MLflow, and trains a small forest in about a second.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from {{ cookiecutter.module_name }}.bundle import (
    BundleMetadata,
    Feature,
    ModelIdentity,
    write,
)
from {{ cookiecutter.module_name }}.dataset import (
    builtin_dataset,
)
from {{ cookiecutter.module_name }}.features import (
    split,
)
from {{ cookiecutter.module_name }}.inference import (
    OnnxModel,
)
from {{ cookiecutter.module_name }}.modeling.candidate import (
    CandidateRun,
)
from {{ cookiecutter.module_name }}.modeling.export import (
    SIGNATURE,
    build_metadata,
    check_parity,
    to_onnx,
)
from {{ cookiecutter.module_name }}.modeling.splits import (
    features_and_labels,
)
from {{ cookiecutter.module_name }}.modeling.train import (
    build_model,
)
from {{ cookiecutter.module_name }}.params import (
    Params,
    load_params,
)


@dataclass(frozen=True)
class SmallBundle:
    directory: Path  # model.onnx and metadata.json
    metadata: BundleMetadata
    model: Any  # the fitted scikit-learn model the bundle was exported from
    params: Params  # params.yaml as read, with the smaller forest
    train_split: pd.DataFrame
    test_split: pd.DataFrame

    @property
    def features(self) -> list[str]:
        return self.metadata.feature_names


def small_bundle(
    folder: Path, registered_model: str, version: int, trees: int, metrics: dict[str, float]
) -> SmallBundle:
    """Train a forest of `trees` trees on the default data and write its bundle in `folder`."""
    params = load_params()
    smaller = params.train.model_copy(update={"n_estimators": trees, "max_depth": 4})
    params = params.model_copy(update={"train": smaller})
    target = params.data.target
    train_split, test_split = split(builtin_dataset(target), target, params.features)
    features, labels = features_and_labels(train_split, target)
    test_features, _ = features_and_labels(test_split, target)
    model = build_model(params.train).fit(features, labels)
    onnx_bytes = to_onnx(model, features.shape[1])
    parity = check_parity(model, OnnxModel(onnx_bytes, SIGNATURE), test_features)
    run = CandidateRun(
        run_id="test-run",
        experiment_id="0",
        model_uri="models:/m-test",
        data_sha256="d" * 64,
        git_commit="unknown",
        trained_at="2026-01-01T00:00:00+00:00",
        features=[
            Feature(name=name, min=float(values.min()), max=float(values.max()))
            for name, values in features.items()
        ],
    )
    identity = ModelIdentity(
        registered_model=registered_model,
        version=version,
        run_id=run.run_id,
        sha256=hashlib.sha256(onnx_bytes).hexdigest(),
    )
    metadata = build_metadata(identity, run, model, params, parity, metrics)
    write(folder / "bundle", onnx_bytes, metadata)
    return SmallBundle(folder / "bundle", metadata, model, params, train_split, test_split)
