"""Request and response models of the service. `build_request_models` makes those that follow the
served model from the bundle's metadata: the one place where the feature list becomes a schema.
"""

from __future__ import annotations

import csv
import decimal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..bundle import BundleMetadata, CategoryFeature, ImageFeature, NumericFeature
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
    """The models that follow the bundle (`metadata`), and what the service needs of them."""

    metadata: BundleMetadata | None
    record: type[BaseModel]
    batch: type[BaseModel]
    prediction_response: type[BaseModel]
    batch_response: type[BaseModel]
    ranges: dict[str, AllowedRange]  # by feature name
    max_batch_size: int
    examples: dict[str, dict[str, Any]]  # for /docs


def build_request_models(
    metadata: BundleMetadata | None,
    range_margin: float,
    max_batch_size: int,
    max_text_chars: int,
    strict_categories: bool,
    examples_file: Path | None = None,
) -> RequestModels:
    """Models for the features and classes of `metadata` (None: no readable bundle)."""
    ranges: dict[str, AllowedRange] = {}
    fields: dict[str, Any] = {}
    for index, feature in enumerate(metadata.features if metadata else []):
        # Attribute names are positional and JSON keys are aliases, so any column name works,
        # even one that is not an identifier or that clashes with a pydantic attribute.
        name = feature.name
        if isinstance(feature, NumericFeature):
            ranges[name] = accepted_range(feature, range_margin)
            # strict: a JSON number, not a string or a boolean that looks like one.
            field_type: Any = float
            settings = Field(
                alias=name,
                strict=True,
                allow_inf_nan=False,
                ge=ranges[name].minimum,
                le=ranges[name].maximum,
                description=f"Training range {feature.min:g} to {feature.max:g}",
            )
        elif isinstance(feature, CategoryFeature):
            seen = ", ".join(feature.categories[:20]) + (", ..." if feature.categories[20:] else "")
            if strict_categories:
                field_type = Literal[tuple(feature.categories)]
                about = f"Seen in training: {seen}; any other is refused"
                settings = Field(alias=name, description=about)
            else:
                field_type = str
                about = f"Seen in training: {seen}; the model ignores any other"
                settings = Field(
                    alias=name, strict=True, max_length=CATEGORY_MAX_CHARS, description=about
                )
        elif isinstance(feature, ImageFeature):  # filled by the upload route, never from JSON
            field_type = Any
            about = f"The picture's {feature.size} pixel values (images.pixels)"
            settings = Field(alias=name, description=about)
        else:
            field_type = str
            about = f"Free text, at most {max_text_chars} characters"
            settings = Field(alias=name, strict=True, max_length=max_text_chars, description=about)
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
    json_records = metadata is not None and metadata.image_feature is None
    label = Literal[tuple(metadata.classes) if metadata else ("",)]  # type: ignore[misc]
    prediction = create_model(
        "Prediction",
        label=(label, Field(description="The predicted class")),
        probabilities=(dict[str, float], Field(description="Probability of each class")),
    )
    version = (int, Field(description="Registered model version that answered"))
    return RequestModels(
        metadata=metadata,
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
        ranges=ranges,
        max_batch_size=max_batch_size,
        examples=request_examples(metadata, record, examples_file) if json_records else {},
    )


def accepted_range(feature: NumericFeature, margin: float) -> AllowedRange:
    """The training range of `feature` widened by `margin` times its width on each side, rounded
    outwards to 4 significant digits so the schema and messages read well."""
    spread = margin * (feature.max - feature.min)
    down = decimal.Context(prec=4, rounding=decimal.ROUND_FLOOR)
    up = decimal.Context(prec=4, rounding=decimal.ROUND_CEILING)
    low = float(down.plus(decimal.Decimal(feature.min - spread)))
    high = float(up.plus(decimal.Decimal(feature.max + spread)))
    return AllowedRange(minimum=max(low, 0.0) if feature.min >= 0 else low, maximum=high)


def request_examples(
    metadata: BundleMetadata, record: type[BaseModel], examples_file: Path | None
) -> dict[str, dict[str, Any]]:
    """Example records for /docs: the first valid row of each class in `examples_file` (the test
    split), else a sample row (the middle of each numeric feature's training range)."""
    examples: dict[str, dict[str, Any]] = {}
    if examples_file is not None and examples_file.is_file():
        with examples_file.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                label = str(row.get(metadata.target))
                try:
                    value = {
                        f.name: float(row[f.name]) if f.kind == "numeric" else str(row[f.name])
                        for f in metadata.features
                    }
                    record.model_validate(value)  # out of range, say: not an example
                except KeyError:
                    break  # a file of another layout: fall back to the sample row
                except (TypeError, ValueError):  # pydantic's ValidationError is a ValueError
                    continue
                summary = f"A {label} case of the test split"
                examples.setdefault(label, {"summary": summary, "value": value})
                if len(examples) == len(metadata.classes):
                    break
    if not examples:
        sample = dict(zip(metadata.feature_names, sample_row(metadata), strict=True))
        examples["middle"] = {"summary": "The middle of each training range", "value": sample}
    return examples
