"""Redis prediction cache: a wrapper around the predictor, with the same interface.

`main.create_app` calls this module's `install`, which makes the app's lifespan, with
API_CACHE_URL set, put a `CachedPredictor` in front of the loaded model (`prediction_cache`), so
the routes are unchanged and nothing outside this file knows the cache. A prediction is stored
under the sha256 of the model's identity (registered name, version, ONNX file hash) and of the
values the model receives (numbers as float32), in feature order: two requests that differ only
in key order, spacing or `1` versus `1.0` share an entry, and a new model version never reads the
old one's entries. Entries expire after API_CACHE_TTL_SECONDS. Answers say what happened in
`X-Cache`: `hit` or `miss` for one record, `<hits>/<records>` for several.

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
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..inference import Row
from .predictor import ModelState, Prediction, Predictor

logger = logging.getLogger(__name__)

# Failures that mean "Redis is unavailable", as opposed to a bug in this module.
UNAVAILABLE = (redis.RedisError, OSError, TimeoutError)
# [hits, records] of the request being answered, for its X-Cache header (see CacheHeader).
CACHE_COUNTS: ContextVar[list[int] | None] = ContextVar("cache_counts", default=None)


class CacheSettings(BaseSettings):
    """`API_CACHE_*` variables; the cache is off unless API_CACHE_URL is set."""

    model_config = SettingsConfigDict(env_prefix="API_CACHE_", extra="ignore")

    url: str | None = Field(default=None, description="e.g. redis://127.0.0.1:6379/0")
    ttl_seconds: int = Field(default=3600, ge=1, description="How long a prediction is kept")
    timeout_seconds: float = Field(
        default=0.05, gt=0, description="Longest wait for Redis on one request"
    )
    retry_after_seconds: float = Field(
        default=5.0, ge=0, description="How long to serve uncached after Redis failed"
    )
    key_prefix: str = Field(default="prediction", description="Namespace of the keys")


class CachedPredictor:
    """A predictor that asks Redis first and stores what the model computes."""

    def __init__(self, predictor: Predictor, client: redis.Redis, settings: CacheSettings) -> None:
        self.predictor = predictor
        self.client = client
        self.settings = settings
        # The predictor's interface, so whatever wraps or reads a predictor can take this one.
        self.metadata = predictor.metadata
        self.version = predictor.version
        self.classes = predictor.classes
        identity = predictor.metadata.identity
        self._model_key = f"{identity.registered_model}:{identity.version}:{identity.sha256}\0"
        self._paused_until = 0.0

    def keys(self, rows: Sequence[Row]) -> list[str]:
        """One key per row: the hash of the model's identity, of the float32 bytes of the row's
        numbers and of its strings (category and text values) as JSON."""
        model = self._model_key.encode("utf-8")
        count = self.predictor.numeric_count
        prefix = self.settings.key_prefix
        keys = []
        for row in rows:
            numbers = np.asarray(row[:count], dtype="<f4").tobytes()
            strings = json.dumps(list(row[count:]), ensure_ascii=False).encode("utf-8")
            keys.append(f"{prefix}:{hashlib.sha256(model + numbers + strings).hexdigest()}")
        return keys

    async def predict(self, records: Sequence[BaseModel]) -> list[Prediction]:
        """Predictions in record order: cached ones from Redis, the others from the model."""
        rows = self.predictor.to_rows(records)
        keys = self.keys(rows)
        found = await self._get(keys)
        missing = [index for index, prediction in enumerate(found) if prediction is None]
        if missing:
            fresh = self.predictor.score([rows[index] for index in missing])
            for index, prediction in zip(missing, fresh, strict=True):
                found[index] = prediction
            await self._set({keys[index]: found[index] for index in missing})
        counts = CACHE_COUNTS.get()
        if counts is not None:
            counts[0] += len(records) - len(missing)
            counts[1] += len(records)
        return found  # type: ignore[return-value]  # every None was filled above

    async def _get(self, keys: list[str]) -> list[Prediction | None]:
        if not self._available():
            return [None] * len(keys)
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                values = await self.client.mget(keys)
        except UNAVAILABLE as error:
            self._failed(error)
            return [None] * len(keys)
        return [self._decode(value) for value in values]

    async def _set(self, entries: dict[str, Prediction]) -> None:
        if not self._available():
            return
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                async with self.client.pipeline(transaction=False) as pipe:
                    for key, prediction in entries.items():
                        text = json.dumps(prediction, separators=(",", ":"))
                        pipe.set(key, text, ex=self.settings.ttl_seconds)
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
                self.settings.retry_after_seconds,
            )
        self._paused_until = time.monotonic() + self.settings.retry_after_seconds


@contextlib.asynccontextmanager
async def prediction_cache(
    state: ModelState, settings: CacheSettings | None = None
) -> AsyncIterator[None]:
    """While the app runs, put a CachedPredictor in front of the loaded model when API_CACHE_URL
    is set. The service starts even if Redis does not answer: the cache is tried again later."""
    settings = settings or CacheSettings()
    if not settings.url or state.predictor is None:
        logger.info("prediction cache off%s", "" if settings.url else ": API_CACHE_URL is not set")
        yield
        return
    client = redis.Redis.from_url(
        settings.url,
        socket_timeout=settings.timeout_seconds,
        socket_connect_timeout=settings.timeout_seconds,
        retry=Retry(NoBackoff(), 0),  # one bounded try; a retry would double the worst wait
    )
    try:
        async with asyncio.timeout(settings.timeout_seconds * 4):
            await client.ping()
    except UNAVAILABLE as error:
        logger.warning("prediction cache at %s does not answer yet: %s", settings.url, error)
    else:
        logger.info("prediction cache on: %s, TTL %d s", settings.url, settings.ttl_seconds)
    state.predictor = CachedPredictor(state.predictor, client, settings)  # type: ignore[assignment]
    try:
        yield
    finally:
        with contextlib.suppress(*UNAVAILABLE):
            await client.aclose()


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
    """Put the cache in front of the app's model for as long as the app runs, and add X-Cache."""
    serve = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with serve(app), prediction_cache(app.state.model):
            yield

    app.router.lifespan_context = lifespan
    app.add_middleware(CacheHeader)  # X-Cache: hit or miss (hits/records for a batch)
