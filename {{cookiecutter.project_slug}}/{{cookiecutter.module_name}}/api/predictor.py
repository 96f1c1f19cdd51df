"""The served model: from validated records to predictions, one ONNX Runtime call per request.

`Predictor.predict` is the whole path of a prediction, and the only `predict` the routes call:
records become rows (their values in the model's feature order), the cache answers the rows it
knows when the service has one, the model scores the others, and each observer sees the answer.
The optional parts of the service (api/main.py, PARTS) plug into it while the app runs: the
cache sets `cache`, metrics set `model_timer` and add an observer, the prediction log adds one.

`ModelState` is what the app's lifespan loaded at startup: a `Predictor`, or the reason there is
none (a missing or broken bundle), which /ready and the prediction routes report as 503.
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

logger = logging.getLogger(__name__)

# One prediction: "label", the predicted class, and "probabilities", by class.
Prediction = dict[str, Any]
# Called with each answered request's rows and predictions (metrics, the prediction log).
Observer = Callable[[Sequence[Row], list[Prediction]], None]
Score = Callable[[Sequence[Row]], list[Prediction]]


class Cache(Protocol):
    """What the predictor asks of a cache (api/cache.py): predictions of `rows`, from what it
    holds, and from `score` for the others."""

    def predict(self, rows: Sequence[Row], score: Score) -> Awaitable[list[Prediction]]: ...


class Predictor:
    """A loaded bundle, and how to read a record's values in the model's feature order (a row:
    numbers for numeric features, then strings for category and text ones)."""

    def __init__(
        self, metadata: BundleMetadata, model: OnnxModel, field_names: Sequence[str]
    ) -> None:
        self.metadata = metadata
        self.model = model
        self.version = metadata.identity.version
        self.classes = list(metadata.classes)
        self.numeric_count = len(metadata.numeric_features)  # the first values of a row
        getter = attrgetter(*field_names)
        # attrgetter of one name returns the value itself, of several a tuple: rows are tuples.
        self.to_row = getter if len(field_names) > 1 else lambda record: (getter(record),)
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

    async def predict(self, records: Sequence[BaseModel]) -> list[Prediction]:
        """Predictions of validated records, in order.

        Async so that a cache can await its store; the model itself runs right here, in tens of
        microseconds: a thread hop would cost more than it saves."""
        rows = [self.to_row(record) for record in records]
        if self.cache is None:
            predictions = self.score(rows)
        else:
            predictions = await self.cache.predict(rows, self.score)
        for observe in self.observers:
            observe(rows, predictions)
        return predictions


@dataclass
class ModelState:
    """The predictor the lifespan loaded, or why there is none."""

    predictor: Predictor | None = None
    reason: str = "the service is starting: the model is not loaded yet"

    def load(
        self,
        folder: Path,
        threads: int,
        expected: BundleMetadata | None,
        field_names: Sequence[str],
    ) -> None:
        """Load the bundle in `folder`, which must still be the one whose metadata shaped the
        request models (`expected`, read when the app was created). A failure is logged and
        kept as the reason; the service keeps running."""
        try:
            metadata, model = load(folder, threads)
            if expected is None or metadata.identity != expected.identity:
                raise BundleError(
                    f"the bundle in {folder} changed while the service started: restart it"
                )
        except BundleError as error:
            self.predictor = None
            self.reason = f"no model loaded: {error}"
            logger.error("%s; /ready answers 503 until the service restarts", self.reason)
            return
        self.predictor = Predictor(metadata, model, field_names)
        logger.info(
            "serving %s from %s (%d features, classes %s)",
            metadata.identity,
            folder,
            len(metadata.features),
            metadata.classes,
        )
