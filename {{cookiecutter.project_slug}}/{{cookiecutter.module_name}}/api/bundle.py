"""The model bundle written by the `export` stage: `metadata.json` read and checked, `model.onnx`
run in ONNX Runtime.

Nothing here needs scikit-learn or pandas: a request becomes a float32 numpy array in the order of
the bundle's feature list, and ONNX Runtime returns labels and class probabilities.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

METADATA_FILE = "metadata.json"
# The metadata.json layouts this service understands (`format_version`, set by the export stage).
SUPPORTED_FORMAT_VERSIONS = frozenset({1})
SUPPORTED_INPUT_DTYPE = "float32"


class BundleError(RuntimeError):
    """The bundle is missing, incomplete or inconsistent; the message says what to fix."""


class FeatureInfo(BaseModel):
    """One model input, in the order the model expects."""

    name: str
    dtype: str
    min: float | None = Field(default=None, description="Smallest value seen in training")
    max: float | None = Field(default=None, description="Largest value seen in training")


class OnnxInfo(BaseModel):
    """How to call the ONNX model."""

    file: str
    sha256: str
    input_name: str
    input_shape: list[int | None]
    input_dtype: str
    label_output: str
    probabilities_output: str
    opset: dict[str, int] = {}


class BundleMetadata(BaseModel):
    """The part of metadata.json that the service uses and shows at `GET /model`."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    format_version: int
    created_at: str
    registered_model: str
    model_version: int
    run_id: str | None = None
    data_sha256: str | None = Field(default=None, description="sha256 of the raw training data")
    target: str
    positive_label: str
    classes: list[str] = Field(min_length=2, description="Labels, in the order of probabilities")
    features: list[FeatureInfo] = Field(min_length=1)
    metrics: dict[str, float | None] = {}
    onnx: OnnxInfo
    parity: dict[str, Any] = {}
    libraries: dict[str, str] = {}

    @field_validator("metrics")
    @classmethod
    def finite_or_none(cls, metrics: dict[str, float | None]) -> dict[str, float | None]:
        # JSON has no NaN: an undefined metric is shown as null.
        return {k: v if v is not None and math.isfinite(v) else None for k, v in metrics.items()}

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @property
    def model_id(self) -> str:
        """Identifies this exact model: registered name, version and file hash."""
        return f"{self.registered_model}:{self.model_version}:{self.onnx.sha256[:16]}"


def read_metadata(bundle_dir: Path) -> BundleMetadata:
    """Read and check `metadata.json` of the bundle in `bundle_dir`."""
    path = bundle_dir / METADATA_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BundleError(
            f"{path} does not exist: run the pipeline (`make pipeline`) to export a model, "
            "or point API_BUNDLE_DIR at a bundle"
        ) from None
    except OSError as error:
        raise BundleError(f"cannot read {path}: {error}") from error
    try:
        metadata = BundleMetadata.model_validate_json(text)
    except ValidationError as error:
        raise BundleError(f"{path} is not a valid bundle description: {error}") from error
    if metadata.format_version not in SUPPORTED_FORMAT_VERSIONS:
        raise BundleError(
            f"{path} has format_version {metadata.format_version}; this service reads "
            f"{sorted(SUPPORTED_FORMAT_VERSIONS)}: update the service or re-export the model"
        )
    if metadata.onnx.input_dtype != SUPPORTED_INPUT_DTYPE:
        raise BundleError(f"{path}: input_dtype must be {SUPPORTED_INPUT_DTYPE}")
    names = metadata.feature_names
    if len(set(names)) != len(names):
        raise BundleError(f"{path}: feature names are not unique")
    if metadata.positive_label not in metadata.classes:
        raise BundleError(f"{path}: positive_label is not one of the classes {metadata.classes}")
    return metadata


class OnnxModel:
    """An ONNX Runtime session and the metadata that says how to feed it."""

    def __init__(self, metadata: BundleMetadata, session: ort.InferenceSession) -> None:
        self.metadata = metadata
        self.session = session
        self._input = metadata.onnx.input_name
        self._outputs = [metadata.onnx.label_output, metadata.onnx.probabilities_output]

    def predict(self, rows: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Labels and class probabilities (columns in `metadata.classes` order) of float32 rows."""
        labels, probabilities = self.session.run(self._outputs, {self._input: rows})
        return [str(label) for label in labels.tolist()], probabilities


def _session(model: bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def load_bundle(bundle_dir: Path, threads: int = 1) -> OnnxModel:
    """Load the bundle in `bundle_dir`: check its metadata, the model's sha256, its inputs and
    outputs, and run one row through it; raise BundleError naming the first problem found."""
    metadata = read_metadata(bundle_dir)
    model_path = bundle_dir / metadata.onnx.file
    try:
        model_bytes = model_path.read_bytes()
    except OSError as error:
        raise BundleError(f"cannot read the model {model_path}: {error}") from error
    digest = hashlib.sha256(model_bytes).hexdigest()
    if digest != metadata.onnx.sha256:
        raise BundleError(
            f"{model_path} has sha256 {digest[:12]}..., metadata.json expects "
            f"{metadata.onnx.sha256[:12]}...: the bundle is corrupt or half-copied, re-export it"
        )
    try:
        session = _session(model_bytes, threads)
    except Exception as error:  # ONNX Runtime raises its own exception types
        raise BundleError(f"ONNX Runtime cannot load {model_path}: {error}") from error

    inputs = {node.name: node for node in session.get_inputs()}
    outputs = {node.name for node in session.get_outputs()}
    expected = metadata.onnx
    if set(inputs) != {expected.input_name}:
        raise BundleError(
            f"{model_path} takes inputs {sorted(inputs)}, not [{expected.input_name!r}]"
        )
    width = inputs[expected.input_name].shape[-1]
    if width != len(metadata.features):
        raise BundleError(
            f"{model_path} takes {width} features, metadata.json lists {len(metadata.features)}"
        )
    missing = {expected.label_output, expected.probabilities_output} - outputs
    if missing:
        raise BundleError(f"{model_path} lacks the outputs {sorted(missing)}")

    model = OnnxModel(metadata, session)
    try:
        labels, probabilities = model.predict(warm_up_row(metadata))
    except Exception as error:  # whatever a broken graph raises at run time
        raise BundleError(f"{model_path} fails on a sample row: {error}") from error
    if probabilities.shape != (1, len(metadata.classes)) or labels[0] not in metadata.classes:
        raise BundleError(
            f"{model_path} answers with {probabilities.shape[1]} probabilities and label "
            f"{labels[0]!r}; metadata.json lists the classes {metadata.classes}"
        )
    return model


def warm_up_row(metadata: BundleMetadata) -> np.ndarray:
    """One row in the middle of the training range: the first inference also warms the session."""
    values = [
        (feature.min + feature.max) / 2
        if feature.min is not None and feature.max is not None
        else 0
        for feature in metadata.features
    ]
    return np.asarray([values], dtype=np.float32)
