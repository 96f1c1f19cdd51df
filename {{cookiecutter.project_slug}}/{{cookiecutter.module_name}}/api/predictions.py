"""From validated records to predictions: one ONNX Runtime call per request, through the
prediction cache when the project has one and it is configured."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from operator import attrgetter
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel

from {{ cookiecutter.module_name }}.api.bundle import (
    OnnxModel,
)

logger = logging.getLogger(__name__)

Prediction = dict[str, Any]


class PredictionCache(Protocol):
    """What the service asks of a cache; a cache that fails answers misses and stores nothing."""

    def keys(self, model_id: str, rows: np.ndarray) -> list[str]: ...

    async def get_many(self, keys: list[str]) -> list[Prediction | None]: ...

    async def set_many(self, entries: dict[str, Prediction]) -> None: ...

    async def close(self) -> None: ...


class UnscorableRecordsError(ValueError):
    """The model returns no valid probabilities for these records (values far out of range)."""

    def __init__(self, positions: list[int]) -> None:
        super().__init__(f"the model cannot score the records at positions {positions}")
        self.positions = positions


class Predictor:
    """The loaded model, its feature order and the optional cache."""

    def __init__(
        self, model: OnnxModel, field_names: Sequence[str], cache: PredictionCache | None = None
    ) -> None:
        self.model = model
        self.cache = cache
        self.classes = list(model.metadata.classes)
        self.model_version = model.metadata.model_version
        self._values = attrgetter(*field_names)
        self._single = len(field_names) == 1

    def to_rows(self, records: Sequence[BaseModel]) -> np.ndarray:
        """Records as a float32 matrix whose columns follow the bundle's feature order."""
        if self._single:
            return np.asarray([[self._values(r)] for r in records], dtype=np.float32)
        return np.asarray([self._values(r) for r in records], dtype=np.float32)

    def _score(self, rows: np.ndarray) -> list[Prediction]:
        labels, probabilities = self.model.predict(rows)
        # Plain Python from here: for the few values of a request, cheaper than numpy calls.
        values = probabilities.tolist()
        unscorable = [i for i, row in enumerate(values) if not all(map(math.isfinite, row))]
        if unscorable:
            raise UnscorableRecordsError(unscorable)
        classes = self.classes
        return [
            {"label": label, "probabilities": dict(zip(classes, row, strict=True))}
            for label, row in zip(labels, values, strict=True)
        ]

    async def predict(self, records: Sequence[BaseModel]) -> tuple[list[Prediction], int | None]:
        """Predictions in record order, and how many came from the cache (None: no cache)."""
        rows = self.to_rows(records)
        if self.cache is None:
            return self._score(rows), None

        keys = self.cache.keys(self.model.metadata.model_id, rows)
        cached = await self.cache.get_many(keys)
        missing = [index for index, hit in enumerate(cached) if hit is None]
        if missing:
            try:
                fresh = self._score(rows[missing])
            except UnscorableRecordsError as error:
                raise UnscorableRecordsError([missing[i] for i in error.positions]) from None
            for index, prediction in zip(missing, fresh, strict=True):
                cached[index] = prediction
            await self.cache.set_many(
                {keys[index]: prediction for index, prediction in zip(missing, fresh, strict=True)}
            )
        return cached, len(records) - len(missing)  # type: ignore[return-value]
