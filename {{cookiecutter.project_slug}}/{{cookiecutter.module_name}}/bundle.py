"""The model bundle: the one contract between the pipeline and whatever serves the model.

A bundle is a folder with `model.onnx` and `metadata.json`: which model it is (its identity), how
to call it (features in kind order, classes, ONNX outputs; `onnx_inputs` gives the input tensors)
and how it was checked (parity with scikit-learn, test metrics). Export, promote, fetch-model and
the service all go through `write`, `read_verified` and `install`, so the format lives here only.
Pydantic and the standard library only: the service imports it without pandas or MLflow.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import PipelineError

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
# Bumped when metadata.json changes in a way its readers must know about.
FORMAT_VERSION = 3
# The kinds of feature, in the order a bundle lists its features (see `onnx_inputs`).
Kind = Literal["numeric", "category", "text", "image"]
KINDS: tuple[Kind, ...] = ("numeric", "category", "text", "image")


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


class NumericFeature(BaseModel):
    """A number; the model computes in float32."""

    kind: Literal["numeric"] = "numeric"
    name: str
    min: float = Field(description="Smallest value seen in training")
    max: float = Field(description="Largest value seen in training")
    median: float | None = Field(None, description="Training median (/explain's baseline)")


class CategoryFeature(BaseModel):
    """A string; the model one-hot encodes the values seen in training and ignores any other."""

    kind: Literal["category"] = "category"
    name: str
    categories: list[str] = Field(min_length=1, description="Values seen in training, sorted")
    most_frequent: str | None = Field(None, description="Commonest value (/explain's baseline)")


class TextFeature(BaseModel):
    """Free text, turned into TF-IDF weights of its words (and character runs)."""

    kind: Literal["text"] = "text"
    name: str
    max_length: int = Field(ge=0, description="Longest text seen in training, in characters")


class ImageFeature(BaseModel):
    """A picture, which the model reads resized to `width` x `height` in `mode` (L grey, RGB
    colour), its pixels scaled to 0..1 row by row (images.py). An image project's one feature."""

    kind: Literal["image"] = "image"
    name: str
    width: int = Field(ge=1, le=1024)
    height: int = Field(ge=1, le=1024)
    mode: Literal["L", "RGB"]

    @property
    def size(self) -> int:
        """How many values the model reads: width x height x channels."""
        return self.width * self.height * (1 if self.mode == "L" else 3)


Feature = Annotated[
    NumericFeature | CategoryFeature | TextFeature | ImageFeature, Field(discriminator="kind")
]


def collapsed(text: str) -> str:
    """A text as the model reads it, whitespace runs as one space: training and inference.py both
    apply it, since ONNX Runtime's character n-grams keep the runs that scikit-learn's collapse."""
    return " ".join(text.split())


@dataclass(frozen=True)
class OnnxInput:
    """One input of the ONNX model and the features it carries."""

    name: str
    dtype: Literal["float32", "string"]
    features: tuple[str, ...]
    kind: Kind
    width: int  # values per row: one per feature, an image's pixel values


def onnx_inputs(features: Sequence[Feature]) -> list[OnnxInput]:
    """The ONNX model's inputs for `features` (in kind order): the numeric ones together in a
    float32 tensor `numeric` [rows, n], then a string tensor `<kind>_<name>` [rows, 1] for each
    category or text feature, or a float32 tensor `image_<name>` [rows, size] for an image."""
    numeric = tuple(f.name for f in features if f.kind == "numeric")
    inputs = [OnnxInput("numeric", "float32", numeric, "numeric", len(numeric))] if numeric else []
    for f in features:
        if isinstance(f, ImageFeature):
            inputs.append(OnnxInput(f"image_{f.name}", "float32", (f.name,), "image", f.size))
        elif f.kind != "numeric":
            inputs.append(OnnxInput(f"{f.kind}_{f.name}", "string", (f.name,), f.kind, 1))
    return inputs


class OnnxSignature(BaseModel):
    """What model.onnx answers."""

    label_output: str
    probabilities_output: str
    opset: dict[str, int]


class Parity(BaseModel):
    """How closely ONNX Runtime matched scikit-learn at export."""

    rows: int
    max_probability_difference: float
    tolerance: float


class BundleMetadata(BaseModel):
    """metadata.json."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    format_version: Literal[3] = FORMAT_VERSION
    created_at: str = Field(description="When the model was trained (ISO 8601)")
    identity: ModelIdentity
    data_sha256: str = Field(description="sha256 of the raw data the model was trained on")
    target: str
    positive_label: str | None = Field(default=None, description="Binary targets' positive class")
    classes: list[str] = Field(min_length=2, description="Labels, in the order of probabilities")
    features: list[Feature] = Field(min_length=1, description="In kind order: numeric first")
    onnx: OnnxSignature
    metrics: dict[str, float | None] = Field(description="Test-split metrics at export")
    parity: Parity
    libraries: dict[str, str] = Field(description="Versions of the libraries that made it")

    @model_validator(mode="after")
    def consistent(self) -> BundleMetadata:
        names = self.feature_names
        if len(set(names)) != len(names):
            raise ValueError("feature names are not unique")
        kinds = [KINDS.index(feature.kind) for feature in self.features]
        if kinds != sorted(kinds):
            raise ValueError("features are not in kind order (numeric, category, text, image)")
        if self.image_feature is not None and len(self.features) > 1:
            raise ValueError("an image model reads its image only: it has one feature")
        if self.positive_label is not None and self.positive_label not in self.classes:
            raise ValueError(f"positive_label {self.positive_label!r} is not in {self.classes}")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @property
    def numeric_features(self) -> list[NumericFeature]:
        return [feature for feature in self.features if isinstance(feature, NumericFeature)]

    @property
    def image_feature(self) -> ImageFeature | None:
        return next((f for f in self.features if isinstance(f, ImageFeature)), None)

    @property
    def onnx_inputs(self) -> list[OnnxInput]:
        return onnx_inputs(self.features)


def file_digest(path: Path) -> str:
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
    """The metadata of the bundle in `folder`, once model.onnx is checked to be the file it
    describes; BundleError names the first problem."""
    path = folder / METADATA_FILE
    document = read_document(folder)
    found = document.get("format_version")
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
    check_digest(folder, metadata.identity)
    return metadata


def read_identity(folder: Path) -> ModelIdentity:
    """Which model the bundle in `folder` is, whatever its format version, once model.onnx is
    checked to be that model."""
    try:
        identity = ModelIdentity.model_validate(read_document(folder).get("identity"))
    except ValidationError:
        raise BundleError(f"{folder / METADATA_FILE} names no valid model identity") from None
    check_digest(folder, identity)
    return identity


def read_document(folder: Path) -> dict:
    path = folder / METADATA_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path} does not exist: there is no bundle in {folder}") from None
    except (OSError, ValueError) as error:
        raise BundleError(f"cannot read {path}: {error}") from None
    if not isinstance(document, dict):
        raise BundleError(f"{path} is not a JSON object")
    return document


def check_digest(folder: Path, identity: ModelIdentity) -> None:
    try:
        digest = file_digest(folder / MODEL_FILE)
    except OSError as error:
        raise BundleError(f"cannot read {folder / MODEL_FILE}: {error.strerror}") from None
    if digest != identity.sha256:
        raise BundleError(
            f"{folder / MODEL_FILE} has sha256 {digest[:12]}, metadata.json expects "
            f"{identity.sha256[:12]}: the bundle is damaged or half-copied"
        )


def install(source: Path, target: Path) -> BundleMetadata:
    """Make `target` a verified copy of the bundle in `source`, all at once: the copy is checked
    beside `target`, then swapped in with two renames, so a reader sees the old bundle or the new
    one, never a mix; if anything fails, `target` is left as it was."""
    read_verified(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted_install(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the service may run as another user
        for name in (MODEL_FILE, METADATA_FILE):
            shutil.copyfile(source / name, staging / name)
        metadata = read_verified(staging)
        if target.exists():
            target.rename(target.with_name(f".{target.name}.previous"))
        staging.rename(target)
    finally:
        recover_interrupted_install(target)  # the old bundle back if the swap failed; no staging
    return metadata


def recover_interrupted_install(target: Path) -> None:
    """Undo an install that stopped between its two renames; drop stale staging folders."""
    previous = target.with_name(f".{target.name}.previous")
    if previous.is_dir() and not target.exists():
        previous.rename(target)
    shutil.rmtree(previous, ignore_errors=True)
    for stale in target.parent.glob(f".{target.name}.new-*"):
        shutil.rmtree(stale, ignore_errors=True)
