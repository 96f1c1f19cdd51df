"""A small bundle made the way the pipeline makes one, for the explain stage's, the service's and
monitoring's tests.

Test support, kept out of the package. It goes through the package's own functions (the
`features` split, `build_model`, `to_onnx`, `check_parity`, `build_metadata`, `bundle.write`), so a
change of the bundle format reaches every test that serves or watches a model. It trains on the
configured data (tests/tables.py), needs neither the pipeline's files nor MLflow, and
trains a small forest in about a second.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tables import kinds, splits

from {{ cookiecutter.module_name }}.bundle import (
    BundleMetadata,
    Feature,
    ModelIdentity,
    onnx_inputs,
    write,
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
    build_metadata,
    check_parity,
    signature_of,
    to_onnx,
)
from {{ cookiecutter.module_name }}.modeling.splits import (
    feature_kinds,
    features_and_labels,
)
from {{ cookiecutter.module_name }}.modeling.train import (
    build_model,
    describe_features,
)
from {{ cookiecutter.module_name }}.params import (
    DataParams,
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

    def typed(self, split: pd.DataFrame) -> pd.DataFrame:
        """The features of a split as the model takes them (numbers, then strings)."""
        columns = {f.name: f.kind for f in self.metadata.features}
        return features_and_labels(split, self.metadata.target, columns)[0]


def small_bundle(
    folder: Path,
    registered_model: str,
    version: int,
    trees: int,
    metrics: dict[str, float],
    data: tuple[pd.DataFrame, DataParams] | None = None,
) -> SmallBundle:
    """Train a forest of `trees` trees and write its bundle in `folder`: on `data` (a frame and
    the `data` settings that describe it, see tables.mixed_frame), else on the configured data."""
    params = load_params()
    smaller = params.train.model_copy(
        update={"model": "random_forest", "n_estimators": trees, "max_depth": 4}
    )
    params = params.model_copy(update={"train": smaller})
    if data is None:
        columns = kinds(params)
        train_split, test_split = splits(params)
    else:
        frame, settings = data
        params = params.model_copy(update={"data": settings})
        columns = feature_kinds(list(frame.columns), settings.target, settings.columns)
        train_split, test_split = split(frame, settings.target, params.features)
    target = params.data.target
    features, labels = features_and_labels(train_split, target, columns)
    test_features, _ = features_and_labels(test_split, target, columns)
    model = build_model(params.train, columns).fit(features, labels)
    described = describe_features(features, columns)
    metadata = export_bundle(
        folder / "bundle", model, described, test_features, params, registered_model, version,
        metrics,
    )  # fmt: skip
    return SmallBundle(folder / "bundle", metadata, model, params, train_split, test_split)


def export_bundle(
    folder: Path,
    model: Any,
    features: list[Feature],
    test_features: pd.DataFrame,
    params: Params,
    registered_model: str,
    version: int,
    metrics: dict[str, float],
) -> BundleMetadata:
    """Export a fitted model into `folder` as the `export` stage does (conversion, parity on
    `test_features`, metadata of a made-up MLflow run); the bundle's metadata."""
    onnx_bytes = to_onnx(model, features)
    signature = signature_of(onnx_bytes)
    parity = check_parity(
        model, OnnxModel(onnx_bytes, signature, onnx_inputs(features)), test_features
    )
    run = CandidateRun(
        run_id="test-run",
        experiment_id="0",
        model_uri="models:/m-test",
        data_sha256="d" * 64,
        git_commit="unknown",
        trained_at="2026-01-01T00:00:00+00:00",
        features=features,
    )
    identity = ModelIdentity(
        registered_model=registered_model,
        version=version,
        run_id=run.run_id,
        sha256=hashlib.sha256(onnx_bytes).hexdigest(),
    )
    metadata = build_metadata(identity, run, model, params, parity, metrics, signature)
    write(folder, onnx_bytes, metadata)
    return metadata
