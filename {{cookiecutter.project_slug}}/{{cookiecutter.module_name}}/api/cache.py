"""Redis prediction cache: predictions of records the service has already answered.

One of the service's optional parts (api/main.py, PARTS). With API_CACHE_URL set,
`attached(app)` makes a `PredictionCache` the loaded predictor's `cache` while the app runs, so
the predictor asks it before the model (api/predictor.py); `install(app)` adds the X-Cache
header. Nothing outside this file knows Redis. A prediction is stored
under the sha256 of the model's identity (registered name, version, ONNX file hash) and of the
values the model receives (numbers as float32), in feature order: two requests that differ only
in key order, spacing or `1` versus `1.0` share an entry, and a new model version never reads the
old one's entries. A picture's key is the bytes of its pixels as the model reads them, so the
same picture sent again, or re-encoded without loss, is a hit. Entries expire after
API_CACHE_TTL_SECONDS. Answers say what happened in `X-Cache`: `hit` or `miss` for one record,
`<hits>/<records>` for several.

Redis is an optimisation, never a dependency: every call is bounded by API_CACHE_TIMEOUT_SECONDS,
and after a failure the service stops asking for API_CACHE_RETRY_AFTER_SECONDS, answering
uncached in the meantime. Without API_CACHE_URL there is no cache at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar

import numpy as np
import redis.asyncio as redis
from fastapi import FastAPI
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..inference import Row
from .predictor import Prediction, Predictor, Score
from .settings import Settings

logger = logging.getLogger(__name__)

# Failures that mean "Redis is unavailable", as opposed to a bug in this module.
UNAVAILABLE = (redis.RedisError, OSError, TimeoutError)
# [hits, records] of the request being answered, for its X-Cache header (see CacheHeader).
CACHE_COUNTS: ContextVar[list[int] | None] = ContextVar("cache_counts", default=None)


class PredictionCache:
    """Predictions from Redis where it has them; the others from the model, then stored."""

    def __init__(self, predictor: Predictor, client: redis.Redis, settings: Settings) -> None:
        self.predictor = predictor
        self.client = client
        self.settings = settings
        identity = predictor.metadata.identity
        self._model_key = f"{identity.registered_model}:{identity.version}:{identity.sha256}\0"
        self._paused_until = 0.0

    def keys(self, rows: Sequence[Row]) -> list[str]:
        """One key per row: the hash of the model's identity, of the float32 bytes of the row's
        numbers and of its strings (category and text values) as JSON."""
        model = self._model_key.encode("utf-8")
        count = self.predictor.model.numeric_count  # a row's first values are its numbers
        prefix = self.settings.cache_key_prefix
        keys = []
        for row in rows:
            numbers = np.asarray(row[:count], dtype="<f4").tobytes()
            strings = json.dumps(list(row[count:]), ensure_ascii=False).encode("utf-8")
            keys.append(f"{prefix}:{hashlib.sha256(model + numbers + strings).hexdigest()}")
        return keys

    async def predict(self, rows: Sequence[Row], score: Score) -> list[Prediction]:
        """Predictions in row order: cached ones from Redis, the others from `score`."""
        keys = self.keys(rows)
        found = await self._get(keys)
        missing = [index for index, prediction in enumerate(found) if prediction is None]
        if missing:
            fresh = score([rows[index] for index in missing])
            for index, prediction in zip(missing, fresh, strict=True):
                found[index] = prediction
            await self._set({keys[index]: found[index] for index in missing})
        counts = CACHE_COUNTS.get()
        if counts is not None:
            counts[0] += len(rows) - len(missing)
            counts[1] += len(rows)
        return found  # type: ignore[return-value]  # every None was filled above

    async def _get(self, keys: list[str]) -> list[Prediction | None]:
        if not self._available():
            return [None] * len(keys)
        try:
            async with asyncio.timeout(self.settings.cache_timeout_seconds):
                values = await self.client.mget(keys)
        except UNAVAILABLE as error:
            self._failed(error)
            return [None] * len(keys)
        return [self._decode(value) for value in values]

    async def _set(self, entries: dict[str, Prediction]) -> None:
        if not self._available():
            return
        try:
            async with asyncio.timeout(self.settings.cache_timeout_seconds):
                async with self.client.pipeline(transaction=False) as pipe:
                    for key, prediction in entries.items():
                        text = json.dumps(prediction, separators=(",", ":"))
                        pipe.set(key, text, ex=self.settings.cache_ttl_seconds)
                    await pipe.execute()
        except UNAVAILABLE as error:
            self._failed(error)

    def _decode(self, value: bytes | None) -> Prediction | None:
        """A stored prediction; anything this service did not write counts as a miss."""
        try:
            prediction = json.loads(value) if value is not None else None
        except ValueError:
            return None
        if not isinstance(prediction, dict) or prediction.keys() != {"label", "probabilities"}:
            return None
        return prediction if prediction["label"] in self.predictor.classes else None

    def _available(self) -> bool:
        return time.monotonic() >= self._paused_until

    def _failed(self, error: BaseException) -> None:
        if self._available():  # log once per outage, not once per request
            logger.warning(
                "prediction cache unavailable (%s: %s); serving uncached for %.1f s",
                type(error).__name__,
                error or "timed out",
                self.settings.cache_retry_after_seconds,
            )
        self._paused_until = time.monotonic() + self.settings.cache_retry_after_seconds


class CacheHeader:
    """ASGI middleware: `X-Cache` on the answers that went through the cache."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counts = [0, 0]
        token = CACHE_COUNTS.set(counts)

        async def send_with_header(message: Message) -> None:
            hits, records = counts
            if message["type"] == "http.response.start" and records:
                value = f"{hits}/{records}" if records > 1 else ("hit" if hits else "miss")
                MutableHeaders(scope=message).append("X-Cache", value)
            await send(message)

        try:
            await self.app(scope, receive, send_with_header)
        finally:
            CACHE_COUNTS.reset(token)


def install(app: FastAPI) -> None:
    """Add X-Cache to the answers of `app` (hit or miss; hits/records for a batch)."""
    app.add_middleware(CacheHeader)


@contextlib.asynccontextmanager
async def attached(app: FastAPI) -> AsyncIterator[None]:
    """While the app runs, put a PredictionCache in front of the loaded model when
    API_CACHE_URL is set. The service starts even if Redis does not answer: the cache is tried
    again later."""
    settings: Settings = app.state.settings
    predictor = app.state.model.predictor
    if not settings.cache_url or predictor is None:
        shown = "" if settings.cache_url else ": API_CACHE_URL is not set"
        logger.info("prediction cache off%s", shown)
        yield
        return
    timeout = settings.cache_timeout_seconds
    client = redis.Redis.from_url(
        settings.cache_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),  # one bounded try; a retry would double the worst wait
    )
    try:
        async with asyncio.timeout(timeout * 4):
            await client.ping()
    except UNAVAILABLE as error:
        logger.warning("prediction cache at %s does not answer yet: %s", settings.cache_url, error)
    else:
        logger.info(
            "prediction cache on: %s, TTL %d s", settings.cache_url, settings.cache_ttl_seconds
        )
    predictor.cache = PredictionCache(predictor, client, settings)
    try:
        yield
    finally:
        with contextlib.suppress(*UNAVAILABLE):
            await client.aclose()
