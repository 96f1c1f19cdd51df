"""POST /explain (the `use_explain_api` option): which regions of one picture decided its label.

Occlusion, on the served ONNX model only: the picture (as the model reads it) and, for each
7 x 7 square of it, a copy with that square set to the background (the median of the border
pixels: black for MNIST digits) go through the model in ONE call; a square's value is how much
the predicted class's probability drops without it. Explanations skip the cache and monitoring.
`install(app)` declares the route with /predict's upload, so the same 413/415/422/503 answers
apply. No `from __future__ import annotations`: FastAPI could not find the local models by name.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Literal

import numpy as np
from fastapi import FastAPI, File, Request, UploadFile
from pydantic import BaseModel

from .. import images
from .predictions import INVALID, decoded
from .routes import NOT_READY, PredictorDep
from .settings import Settings

MAX_CONTRIBUTIONS = 20
SQUARE = 7  # pixels a side of each occluded region


class Contribution(BaseModel):
    name: str
    value: float


class Explanation(BaseModel):
    label: str
    method: Literal["occlusion"] = "occlusion"
    contributions: list[Contribution]


def occluded(picture: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """The squares of `picture` [height, width, channels] and, for each, the picture without it."""
    height, width = picture.shape[:2]
    border = np.concatenate([picture[0], picture[-1], picture[:, 0], picture[:, -1]])
    background = float(np.median(border))
    names, variants = [], []
    for top in range(0, height, SQUARE):
        for left in range(0, width, SQUARE):
            bottom, right = min(top + SQUARE, height), min(left + SQUARE, width)
            variant = picture.copy()
            variant[top:bottom, left:right] = background
            names.append(f"rows {top}-{bottom - 1}, columns {left}-{right - 1}")
            variants.append(variant.reshape(-1))
    return names, variants


def install(app: FastAPI) -> None:
    @app.post("/explain", tags=["predictions"], responses={**INVALID, **NOT_READY})
    async def explain(
        image: Annotated[UploadFile, File(description="A PNG or JPEG picture")],
        request: Request,
        predictor: PredictorDep,
    ) -> Explanation:
        """Why one picture gets its label: each 7 x 7 square's drop of the label's probability
        when blanked, largest first (at most 20)."""
        settings: Settings = request.app.state.settings
        feature = predictor.metadata.image_feature
        picture = images.pixels(await decoded(image, "image", settings.max_image_bytes), feature)
        names, variants = occluded(picture.reshape(feature.height, feature.width, -1))
        labels, probabilities = predictor.model.predict([picture, *variants])
        column = probabilities[:, predictor.classes.index(labels[0])]
        drops = (column[0] - column[1:]).tolist()
        ranked = sorted(zip(names, drops, strict=True), key=lambda item: -abs(item[1]))
        return Explanation(
            label=labels[0],
            contributions=[Contribution(name=n, value=v) for n, v in ranked[:MAX_CONTRIBUTIONS]],
        )


@asynccontextmanager
async def attached(app: FastAPI) -> AsyncIterator[None]:
    yield  # nothing to plug into the predictor: explanations call its model directly
