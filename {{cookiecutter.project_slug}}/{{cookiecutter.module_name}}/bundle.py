"""The model bundle: the one contract between the pipeline and whatever serves the model.

A bundle is a folder holding `model.onnx` and `metadata.json`. The metadata says which model it is
(registered name, version, MLflow run id and the sha256 of model.onnx: its identity), how to call
it (ordered features with their training ranges, class labels, ONNX input and output names) and
how it was checked (parity with scikit-learn, test metrics). `export` writes candidate bundles,
`promote` installs the winner as models/bundle, `make fetch-model` downloads one from the registry,
and the prediction service reads it; all of them go through `write`, `read_verified` and
`install` below, so the format is defined here only.

This module uses pydantic and the standard library only: the service imports it without pandas,
scikit-learn or MLflow.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import PipelineError

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
# Bumped when metadata.json changes in a way its readers must know about.
FORMAT_VERSION = 2
# The model computes in float32: requests become float32 rows in feature order.
INPUT_DTYPE = "float32"


class BundleError(PipelineError):
    """A bundle is missing, damaged or inconsistent; the message says which and what to do."""


class ModelIdentity(BaseModel):
    """Which model this is: the registry's name and version, its run, and its ONNX file's hash."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    registered_model: str
    version: int = Field(ge=1)
    run_id: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of model.onnx")

    def __str__(self) -> str:
        return (
            f"{self.registered_model} version {self.version} "
            f"(run {self.run_id[:8]}, model.onnx {self.sha256[:12]})"
        )


class Feature(BaseModel):
    """One model input, in the order the model expects."""

    name: str
    min: float = Field(description="Smallest value seen in training")
    max: float = Field(description="Largest value seen in training")


class OnnxSignature(BaseModel):
    """How to call model.onnx."""

    input_name: str
    label_output: str
    probabilities_output: str
    opset: dict[str, int]


class Parity(BaseModel):
    """How closely ONNX Runtime matched scikit-learn when the bundle was exported."""

    rows: int
    max_probability_difference: float
    tolerance: float


class BundleMetadata(BaseModel):
    """metadata.json."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    format_version: Literal[2] = FORMAT_VERSION
    created_at: str = Field(description="When the model was trained (ISO 8601)")
    identity: ModelIdentity
    data_sha256: str = Field(description="sha256 of the raw data the model was trained on")
    target: str
    positive_label: str
    classes: list[str] = Field(min_length=2, description="Labels, in the order of probabilities")
    features: list[Feature] = Field(min_length=1)
    input_dtype: Literal["float32"] = INPUT_DTYPE
    onnx: OnnxSignature
    metrics: dict[str, float | None] = Field(description="Test-split metrics at export")
    parity: Parity
    libraries: dict[str, str] = Field(description="Versions of the libraries that made it")

    @model_validator(mode="after")
    def consistent(self) -> BundleMetadata:
        names = self.feature_names
        if len(set(names)) != len(names):
            raise ValueError("feature names are not unique")
        if self.positive_label not in self.classes:
            raise ValueError(f"positive_label {self.positive_label!r} is not in {self.classes}")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]


def file_digest(path: Path) -> str:
    """The sha256 of a file, read in blocks."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write(folder: Path, model: bytes, metadata: BundleMetadata) -> None:
    """Write a bundle into `folder` (created if needed); the metadata must describe `model`."""
    if hashlib.sha256(model).hexdigest() != metadata.identity.sha256:
        raise BundleError("the metadata's sha256 is not the model's: nothing written")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MODEL_FILE).write_bytes(model)
    (folder / METADATA_FILE).write_text(metadata.model_dump_json(indent=2) + "\n", "utf-8")


def read_verified(folder: Path) -> BundleMetadata:
    """The metadata of the bundle in `folder`, after checking that model.onnx is the file it
    describes; BundleError names the first problem."""
    path = folder / METADATA_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path} does not exist: there is no bundle in {folder}") from None
    except (OSError, ValueError) as error:
        raise BundleError(f"cannot read {path}: {error}") from None
    found = document.get("format_version") if isinstance(document, dict) else None
    if found != FORMAT_VERSION:
        raise BundleError(
            f"{path} has format_version {found!r}, this code reads {FORMAT_VERSION}: "
            "export the model again with this version of the project"
        )
    try:
        metadata = BundleMetadata.model_validate(document)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(map(str, problem["loc"])) or "metadata"
        raise BundleError(f"{path} is not a valid bundle: {where}: {problem['msg']}") from None
    try:
        digest = file_digest(folder / MODEL_FILE)
    except OSError as error:
        raise BundleError(f"cannot read {folder / MODEL_FILE}: {error.strerror}") from None
    if digest != metadata.identity.sha256:
        raise BundleError(
            f"{folder / MODEL_FILE} has sha256 {digest[:12]}, metadata.json expects "
            f"{metadata.identity.sha256[:12]}: the bundle is damaged or half-copied"
        )
    return metadata


def install(source: Path, target: Path) -> BundleMetadata:
    """Make `target` a verified copy of the bundle in `source`, all at once.

    The copy is made and checked in a folder beside `target`, then swapped in with two renames,
    so a reader (the service, DVC) sees the old bundle or the new one, never a mix; if anything
    fails, `target` is left as it was. Returns the installed bundle's metadata.
    """
    read_verified(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted_install(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    previous = target.with_name(f".{target.name}.previous")
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the service may run as another user
        for name in (MODEL_FILE, METADATA_FILE):
            shutil.copyfile(source / name, staging / name)
        metadata = read_verified(staging)
        if target.exists():
            target.rename(previous)
        try:
            staging.rename(target)
        except OSError:
            if previous.exists() and not target.exists():
                previous.rename(target)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # still there only if the swap failed
    shutil.rmtree(previous, ignore_errors=True)
    return metadata


def recover_interrupted_install(target: Path) -> None:
    """Undo an install that stopped between its two renames; drop stale staging folders."""
    previous = target.with_name(f".{target.name}.previous")
    if previous.is_dir() and not target.exists():
        previous.rename(target)
    shutil.rmtree(previous, ignore_errors=True)
    for stale in target.parent.glob(f".{target.name}.new-*"):
        shutil.rmtree(stale, ignore_errors=True)
