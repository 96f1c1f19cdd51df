"""POST /explain (the `use_explain_api` option): which parts of one record decided its label.

Occlusion, on the served ONNX model only: the record and, for each part, a copy with that part
replaced by its baseline go through the model in ONE call; a part's value is how much the
predicted class's probability drops without it. Parts and baselines: each feature, a number at
its training median (the bundle's `median`), a category at its most frequent value, a text
empty; a project whose only feature is a text explains its words, each removed in turn.
Explanations skip the cache and monitoring: they are not predictions the service made.
`install(app)` declares the route with /predict's body, so the same 413/422/503 answers apply.
No `from __future__ import annotations`: FastAPI could not find the local models by name.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI
from pydantic import BaseModel

from ..bundle import CategoryFeature, Feature, NumericFeature, TextFeature
from ..inference import Row
from .predictions import INVALID
from .predictor import Predictor
from .routes import NOT_READY, PredictorDep
from .schemas import RequestModels

MAX_CONTRIBUTIONS = 20


class Contribution(BaseModel):
    name: str
    value: float


class Explanation(BaseModel):
    label: str
    method: Literal["occlusion"] = "occlusion"
    contributions: list[Contribution]


def baseline(feature: Feature) -> Any:
    """What stands for `feature` when it is left out (older bundles lack median and mode: the
    middle of the range, the first category)."""
    if isinstance(feature, NumericFeature):
        return feature.median if feature.median is not None else (feature.min + feature.max) / 2
    if isinstance(feature, CategoryFeature):
        return feature.most_frequent or feature.categories[0]
    return ""


def occluded(row: Row, features: Sequence[Feature]) -> tuple[list[str], list[Row]]:
    """The parts of `row` and, for each, the row without it."""
    if len(features) == 1 and isinstance(features[0], TextFeature):
        words = str(row[0]).split()
        return words, [(" ".join(words[:i] + words[i + 1 :]),) for i in range(len(words))]
    variants = [(*row[:i], baseline(f), *row[i + 1 :]) for i, f in enumerate(features)]
    return [f.name for f in features], variants


def explain_rows(predictor: Predictor, names: list[str], variants: list[Row]) -> Explanation:
    """variants[0] is the record, then one per name: one model call, contributions ranked."""
    labels, probabilities = predictor.model.predict(variants)
    column = probabilities[:, predictor.classes.index(labels[0])]
    drops = (column[0] - column[1:]).tolist()
    ranked = sorted(zip(names, drops, strict=True), key=lambda item: -abs(item[1]))
    return Explanation(
        label=labels[0],
        contributions=[Contribution(name=n, value=v) for n, v in ranked[:MAX_CONTRIBUTIONS]],
    )


def install(app: FastAPI) -> None:
    models: RequestModels = app.state.request_models

    @app.post("/explain", tags=["predictions"], responses={**INVALID, **NOT_READY})
    async def explain(
        record: Annotated[models.record, Body(openapi_examples=models.examples)],
        predictor: PredictorDep,
    ) -> Explanation:
        """Why one record gets its label: each part's drop of the label's probability when
        replaced by its baseline, largest first (at most 20)."""
        row = predictor.to_row(record)
        names, variants = occluded(row, predictor.metadata.features)
        return explain_rows(predictor, names, [row, *variants])


@asynccontextmanager
async def attached(app: FastAPI) -> AsyncIterator[None]:
    yield  # nothing to plug into the predictor: explanations call its model directly
