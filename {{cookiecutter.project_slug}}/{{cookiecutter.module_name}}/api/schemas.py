"""Request and response models of the service.

The record model is built from the bundle's feature list when the app is created, so the
OpenAPI schema at /docs names every feature, and a request is rejected (422) for a missing,
unknown, non-numeric or non-finite field, naming the field. Feature names are used as JSON keys
through aliases, so any column name works, even one that clashes with a pydantic attribute.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model

from {{ cookiecutter.module_name }}.api.bundle import (
    BundleMetadata,
    warm_up_row,
)

# The model computes in float32: a larger magnitude would turn into infinity.
FLOAT32_MAX = float(np.finfo(np.float32).max)


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    model_version: int | None = None
    reason: str | None = Field(default=None, description="Why the service is not ready")


class ErrorMessage(BaseModel):
    detail: str


class FieldError(BaseModel):
    field: str = Field(description="Path of the field, e.g. records[3].mean_radius")
    message: str
    type: str


class ValidationErrors(BaseModel):
    """422: what is wrong with the request, field by field."""

    detail: str = Field(description="The first problem, in one line")
    errors: list[FieldError]


@dataclass(frozen=True)
class RequestSchemas:
    """The models that depend on the bundle: built once per app."""

    record: type[BaseModel]
    batch: type[BaseModel]
    prediction: type[BaseModel]
    response: type[BaseModel]
    batch_response: type[BaseModel]
    field_names: tuple[str, ...]


def build_schemas(metadata: BundleMetadata | None, max_batch_size: int) -> RequestSchemas:
    """Models for the features and classes of `metadata`; without metadata (no bundle) a record
    has no known fields, and every prediction route answers 503 anyway."""
    fields: dict[str, Any] = {}
    for index, feature in enumerate(metadata.features if metadata else []):
        seen = ""
        if feature.min is not None and feature.max is not None:
            seen = f" (training range {feature.min:g} to {feature.max:g})"
        fields[f"f{index}"] = (
            float,
            Field(
                alias=feature.name,
                strict=True,  # a number, not a string or a boolean that looks like one
                allow_inf_nan=False,
                ge=-FLOAT32_MAX,
                le=FLOAT32_MAX,
                description=f"{feature.name}, {feature.dtype}{seen}",
            ),
        )
    strict_object = ConfigDict(extra="forbid", validate_by_alias=True, validate_by_name=False)
    record = create_model("Record", __config__=strict_object, **fields)
    batch = create_model(
        "BatchRequest",
        __config__=strict_object,
        records=(list[record], Field(min_length=1, max_length=max_batch_size)),
    )

    classes = tuple(metadata.classes) if metadata else ("",)
    label_type = Literal[classes]  # type: ignore[valid-type]
    prediction = create_model(
        "Prediction",
        label=(label_type, Field(description="The predicted class")),
        probabilities=(
            dict[str, float],
            Field(description="Probability of each class; the label is the most probable"),
        ),
    )
    version = (int, Field(description="Registered model version that answered"))
    response = create_model("PredictionResponse", __base__=prediction, model_version=version)
    batch_response = create_model(
        "BatchPredictionResponse",
        model_version=version,
        predictions=(list[prediction], Field(description="One per record, in request order")),
    )
    return RequestSchemas(
        record=record,
        batch=batch,
        prediction=prediction,
        response=response,
        batch_response=batch_response,
        field_names=tuple(fields),
    )


def request_examples(
    metadata: BundleMetadata | None, examples_file: Path | None
) -> list[dict[str, Any]]:
    """Example records for /docs: the first row of each class in `examples_file` (the test
    split), else the middle of each feature's training range."""
    if metadata is None:
        return []
    names = metadata.feature_names
    examples: dict[str, dict[str, float]] = {}
    if examples_file is not None and examples_file.is_file():
        with examples_file.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                label = row.get(metadata.target)
                if label in examples:
                    continue
                try:
                    record = {name: float(row[name]) for name in names}
                except (KeyError, TypeError, ValueError):
                    break  # a file of another layout: fall back to the ranges
                if all(math.isfinite(value) for value in record.values()):
                    examples[str(label)] = record
                if len(examples) == len(metadata.classes):
                    break
    if not examples:
        middle = [float(value) for value in warm_up_row(metadata)[0]]
        return [
            {
                "summary": "Middle of the training range",
                "value": dict(zip(names, middle, strict=True)),
            }
        ]
    return [
        {"summary": f"A {label} case from the test split", "value": record}
        for label, record in examples.items()
    ]


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """("body", "records", 3, "mean_radius") -> "records[3].mean_radius"."""
    parts = list(location[1:] if location and location[0] == "body" else location)
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"
