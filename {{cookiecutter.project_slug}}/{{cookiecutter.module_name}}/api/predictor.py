"""The path of a prediction: `Predictor.predict` turns validated records into rows (values in
feature order); the cache, if any, answers the rows it knows, the model scores the others in one
ONNX Runtime call, each observer sees the answer. The parts in api/main.py's PARTS plug in while
the app runs: the cache sets `cache`, metrics set `model_timer` and add an observer, and so does
the prediction log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from ..bundle import BundleError, BundleMetadata
from ..inference import OnnxModel, Row, load
from .schemas import RequestModels

logger = logging.getLogger(__name__)

# One prediction: "label", the predicted class, and "probabilities", by class.
Prediction = dict[str, Any]
# Called with each answered request's rows and predictions (metrics, the prediction log).
Observer = Callable[[Sequence[Row], list[Prediction]], None]
Score = Callable[[Sequence[Row]], list[Prediction]]


class Cache(Protocol):
    """Predictions of `rows`, from what the cache holds and from `score` (api/cache.py)."""

    def predict(self, rows: Sequence[Row], score: Score) -> Awaitable[list[Prediction]]: ...


class Predictor:
    """A loaded bundle, and how to read a record as a row (its values in feature order)."""

    def __init__(self, metadata: BundleMetadata, model: OnnxModel, record: type[BaseModel]) -> None:
        self.metadata = metadata
        self.model = model
        self.version = metadata.identity.version
        self.classes = list(metadata.classes)
        # Record's attributes are in feature order; attrgetter of several names gives a tuple, of
        # one name the value itself.
        names = list(record.model_fields)
        getter = attrgetter(*names)
        self.to_row = getter if len(names) > 1 else lambda one: (getter(one),)
        self.cache: Cache | None = None
        self.model_timer: Callable[[float], None] | None = None  # seconds of each model call
        self.observers: list[Observer] = []

    def score(self, rows: Sequence[Row]) -> list[Prediction]:
        """One prediction per row, in order, from the model."""
        start = time.perf_counter()
        labels, probabilities = self.model.predict(rows)
        if self.model_timer is not None:
            self.model_timer(time.perf_counter() - start)
        classes = self.classes
        # Plain Python from here: for the few values of a request, cheaper than numpy calls.
        return [
            {"label": label, "probabilities": dict(zip(classes, row, strict=True))}
            for label, row in zip(labels, probabilities.tolist(), strict=True)
        ]

    async def predict(
        self, records: Sequence[BaseModel], observed: Sequence[Row] | None = None
    ) -> list[Prediction]:
        """Predictions of validated records, in order. Async so that a cache can await its store;
        the model runs right here, in tens of microseconds: a thread hop would cost more.
        `observed`: what the observers see of each record in place of its row, when the row is
        not what monitoring keeps (a picture's `images.measures` values, not its pixels)."""
        rows = [self.to_row(record) for record in records]
        if self.cache is None:
            predictions = self.score(rows)
        else:
            predictions = await self.cache.predict(rows, self.score)
        seen = rows if observed is None else observed
        for observe in self.observers:
            observe(seen, predictions)
        return predictions


@dataclass
class ModelState:
    """The predictor the lifespan loaded, or why there is none (/ready answers 503 with it)."""

    predictor: Predictor | None = None
    reason: str = "the service is starting: the model is not loaded yet"

    def load(self, folder: Path, threads: int, models: RequestModels) -> None:
        """Load `folder`'s bundle, still the one that shaped `models`; a failure is the reason."""
        try:
            metadata, model = load(folder, threads)
            if models.metadata is None or metadata.identity != models.metadata.identity:
                raise BundleError(
                    f"the bundle in {folder} changed while the service started: restart it"
                )
        except BundleError as error:
            self.reason = f"no model loaded: {error}"
            logger.error("%s; /ready answers 503 until the service restarts", self.reason)
            return
        self.predictor = Predictor(metadata, model, models.record)
        logger.info("serving %s from %s, classes %s", metadata.identity, folder, metadata.classes)
