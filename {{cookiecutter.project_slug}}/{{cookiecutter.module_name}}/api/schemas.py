"""Request and response models of the service.

The fixed ones (health, readiness, errors) are ordinary pydantic classes. The ones that follow the
served model are built from the bundle's metadata when the app is created, in
`build_request_models`: the one place where the feature list becomes a schema. Teams change their
data, and a record must name exactly the model's features, so `Record` is made with pydantic's
`create_model`: one required field per feature, by its kind in the bundle:

- numeric: a JSON number within the feature's accepted range: its training range widened by
  `API_RANGE_MARGIN` times its width on each side (never below 0 for a feature that was never
  negative in training). It appears in the OpenAPI schema as `minimum`/`maximum`, and a value
  outside it gets a 422 naming the field and the range (see errors.py);
- category: a string of at most CATEGORY_MAX_CHARS characters. The model ignores a value it did
  not see in training; with `API_STRICT_CATEGORIES=true` such a value gets a 422 instead;
- text: a string of at most `API_MAX_TEXT_CHARS` characters.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..bundle import BundleMetadata, CategoryFeature, NumericFeature
from ..inference import sample_row

# Longest category value a request may send; category values are names, not text.
CATEGORY_MAX_CHARS = 200


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    model_version: int | None = Field(default=None, description="Registered version served")
    reason: str | None = Field(default=None, description="Why the service is not ready")


class AllowedRange(BaseModel):
    minimum: float
    maximum: float


class FieldError(BaseModel):
    field: str = Field(description="Path of the field, e.g. records[3].mean_radius")
    message: str
    type: str = Field(description="pydantic's error type, or out_of_range")
    allowed: AllowedRange | None = Field(default=None, description="With out_of_range")


class ValidationErrors(BaseModel):
    """422: what is wrong with the request, field by field."""

    detail: str = Field(description="The first problem, in one line")
    errors: list[FieldError]


class ErrorMessage(BaseModel):
    detail: str


@dataclass(frozen=True)
class RequestModels:
    """The models that follow the bundle, and what the service needs to know about them."""

    record: type[BaseModel]
    batch: type[BaseModel]
    prediction_response: type[BaseModel]
    batch_response: type[BaseModel]
    # Attribute names of Record in the model's feature order (JSON keys are the feature names).
    field_names: tuple[str, ...]
    ranges: dict[str, AllowedRange] = field(default_factory=dict)  # by feature name
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)  # for /docs


def build_request_models(
    metadata: BundleMetadata | None,
    range_margin: float,
    max_batch_size: int,
    max_text_chars: int,
    strict_categories: bool,
    examples_file: Path | None = None,
) -> RequestModels:
    """Models for the features and classes of `metadata` (None: no readable bundle)."""
    features = metadata.features if metadata else []
    ranges = {
        feature.name: accepted_range(feature, range_margin)
        for feature in features
        if isinstance(feature, NumericFeature)
    }
    fields: dict[str, Any] = {}
    for index, feature in enumerate(features):
        # Attribute names are positional and JSON keys are aliases, so any column name works,
        # even one that is not an identifier or that clashes with a pydantic attribute.
        if isinstance(feature, NumericFeature):
            allowed = ranges[feature.name]
            field_type: Any = float
            settings = Field(
                alias=feature.name,
                strict=True,  # a JSON number, not a string or a boolean that looks like one
                allow_inf_nan=False,
                ge=allowed.minimum,
                le=allowed.maximum,
                description=f"Training range {feature.min:g} to {feature.max:g}",
            )
        elif isinstance(feature, CategoryFeature) and strict_categories:
            field_type = Literal[tuple(feature.categories)]
            settings = Field(alias=feature.name, description=category_description(feature, True))
        elif isinstance(feature, CategoryFeature):
            field_type = str
            settings = Field(
                alias=feature.name,
                strict=True,
                max_length=CATEGORY_MAX_CHARS,
                description=category_description(feature, False),
            )
        else:
            field_type = str
            settings = Field(
                alias=feature.name,
                strict=True,
                max_length=max_text_chars,
                description=f"Free text, at most {max_text_chars} characters",
            )
        fields[f"f{index}"] = (field_type, settings)
    strict_object = ConfigDict(extra="forbid", validate_by_alias=True, validate_by_name=False)
    # Without a bundle the features are unknown: any object passes, and the routes answer 503.
    record = create_model(
        "Record", __config__=strict_object if metadata else ConfigDict(extra="ignore"), **fields
    )
    batch = create_model(
        "BatchRequest",
        __config__=strict_object,
        records=(list[record], Field(min_length=1, max_length=max_batch_size)),
    )

    label = Literal[tuple(metadata.classes) if metadata else ("",)]  # type: ignore[misc]
    prediction = create_model(
        "Prediction",
        label=(label, Field(description="The predicted class")),
        probabilities=(dict[str, float], Field(description="Probability of each class")),
    )
    version = (int, Field(description="Registered model version that answered"))
    return RequestModels(
        record=record,
        batch=batch,
        prediction_response=create_model(
            "PredictionResponse", __base__=prediction, model_version=version
        ),
        batch_response=create_model(
            "BatchPredictionResponse",
            model_version=version,
            predictions=(list[prediction], Field(description="One per record, in order")),
        ),
        field_names=tuple(fields),
        ranges=ranges,
        examples=request_examples(metadata, ranges, examples_file),
    )


def category_description(feature: CategoryFeature, strict: bool) -> str:
    shown = ", ".join(feature.categories[:20]) + (", ..." if len(feature.categories) > 20 else "")
    other = "any other is refused" if strict else "the model ignores any other"
    return f"Seen in training: {shown}; {other}"


def accepted_range(feature: NumericFeature, margin: float) -> AllowedRange:
    """The training range of `feature` widened by `margin` times its width on each side,
    rounded outwards to 4 significant digits so the schema and messages read well."""
    spread = margin * (feature.max - feature.min)
    low = round_outwards(feature.min - spread, up=False)
    if feature.min >= 0:
        low = max(low, 0.0)
    return AllowedRange(minimum=low, maximum=round_outwards(feature.max + spread, up=True))


def round_outwards(value: float, up: bool, digits: int = 4) -> float:
    """`value` rounded up (or down) to `digits` significant digits."""
    if value == 0 or not math.isfinite(value):
        return value
    shift = digits - 1 - math.floor(math.log10(abs(value)))
    direction = math.ceil if up else math.floor
    if shift >= 0:
        return direction(value * 10**shift) / 10**shift
    return float(direction(value / 10**-shift) * 10**-shift)


def request_examples(
    metadata: BundleMetadata | None,
    ranges: dict[str, AllowedRange],
    examples_file: Path | None,
) -> dict[str, dict[str, Any]]:
    """Example records for /docs: the first accepted row of each class in `examples_file` (the
    test split), else a sample row (the middle of each numeric feature's training range)."""
    if metadata is None:
        return {}
    examples: dict[str, dict[str, Any]] = {}
    if examples_file is not None and examples_file.is_file():
        with examples_file.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                label = str(row.get(metadata.target))
                try:
                    record = {
                        f.name: float(row[f.name]) if f.kind == "numeric" else str(row[f.name])
                        for f in metadata.features
                    }
                except (KeyError, TypeError, ValueError):
                    break  # a file of another layout: fall back to the sample row
                accepted = all(
                    allowed.minimum <= record[name] <= allowed.maximum
                    for name, allowed in ranges.items()
                )
                if accepted and label not in examples:
                    examples[label] = {
                        "summary": f"A {label} case of the test split",
                        "value": record,
                    }
                if len(examples) == len(metadata.classes):
                    break
    if not examples:
        sample = dict(zip(metadata.feature_names, sample_row(metadata), strict=True))
        examples["middle"] = {"summary": "The middle of each training range", "value": sample}
    return examples
