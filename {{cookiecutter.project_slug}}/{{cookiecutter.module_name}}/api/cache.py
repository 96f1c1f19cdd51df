"""Redis prediction cache: a prediction is stored under a hash of the model and the validated
input, and served from Redis while its TTL lasts.

The key is the sha256 of the model's identity (registered name, version, ONNX file hash) and of
the float32 values the model receives, in feature order. Two requests that differ only in key
order, spacing or `1` versus `1.0` share an entry; a new model version never reads the old
one's entries.

Redis is an optimisation, never a dependency: every call is bounded by
`API_CACHE_TIMEOUT_SECONDS`, and after a failure the service stops asking for
`API_CACHE_RETRY_AFTER_SECONDS`, answering uncached in the meantime. Without `API_CACHE_URL`
there is no cache at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from typing import Any

import numpy as np
import redis.asyncio as redis
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from {{ cookiecutter.module_name }}.api.settings import (
    ENV_FILE,
)

logger = logging.getLogger(__name__)

# Failures that mean "Redis is unavailable", as opposed to a bug in this module.
UNAVAILABLE = (redis.RedisError, OSError, TimeoutError)


class CacheSettings(BaseSettings):
    """`API_CACHE_*` variables; the cache is off unless API_CACHE_URL is set."""

    model_config = SettingsConfigDict(
        env_prefix="API_CACHE_", env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore"
    )

    url: str | None = Field(default=None, description="e.g. redis://127.0.0.1:6379/0")
    ttl_seconds: int = Field(default=3600, ge=1, description="How long a prediction is kept")
    timeout_seconds: float = Field(
        default=0.05, gt=0, description="Longest wait for Redis on one request"
    )
    retry_after_seconds: float = Field(
        default=5.0, ge=0, description="How long to serve uncached after Redis failed"
    )
    key_prefix: str = Field(default="prediction", description="Namespace of the keys")


class RedisPredictionCache:
    """Reads and writes predictions; a failure costs one bounded wait, then a pause."""

    def __init__(self, client: redis.Redis, settings: CacheSettings) -> None:
        self.client = client
        self.settings = settings
        self._paused_until = 0.0

    def keys(self, model_id: str, rows: np.ndarray) -> list[str]:
        """One key per row: the hash of the model's identity and of the row's float32 bytes."""
        model = model_id.encode("utf-8") + b"\0"
        canonical = np.ascontiguousarray(rows, dtype="<f4")
        return [
            f"{self.settings.key_prefix}:{hashlib.sha256(model + row.tobytes()).hexdigest()}"
            for row in canonical
        ]

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

    async def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]:
        """The cached prediction of each key, None for a miss (or when Redis is unavailable)."""
        if not self._available():
            return [None] * len(keys)
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                values = await self.client.mget(keys)
        except UNAVAILABLE as error:
            self._failed(error)
            return [None] * len(keys)
        return [_decode(value) for value in values]

    async def set_many(self, entries: dict[str, dict[str, Any]]) -> None:
        """Store predictions with the TTL; silently skipped when Redis is unavailable."""
        if not entries or not self._available():
            return
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                async with self.client.pipeline(transaction=False) as pipe:
                    for key, prediction in entries.items():
                        pipe.set(key, _encode(prediction), ex=self.settings.ttl_seconds)
                    await pipe.execute()
        except UNAVAILABLE as error:
            self._failed(error)

    async def close(self) -> None:
        with contextlib.suppress(*UNAVAILABLE):
            await self.client.aclose()


def _encode(prediction: dict[str, Any]) -> bytes:
    return json.dumps(prediction, separators=(",", ":")).encode("utf-8")


def _decode(value: bytes | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        prediction = json.loads(value)
    except ValueError:
        return None  # not written by this service: treat as a miss, it will be overwritten
    return prediction if isinstance(prediction, dict) else None


async def open_cache(settings: CacheSettings | None = None) -> RedisPredictionCache | None:
    """The cache described by `settings` (default: environment), or None when it is off.

    The service starts even if Redis does not answer: the cache is tried again later."""
    settings = settings or CacheSettings()
    if not settings.url:
        logger.info("prediction cache off: API_CACHE_URL is not set")
        return None
    client = redis.Redis.from_url(
        settings.url,
        socket_timeout=settings.timeout_seconds,
        socket_connect_timeout=settings.timeout_seconds,
        retry=Retry(NoBackoff(), 0),  # one bounded try; a retry would double the worst wait
    )
    cache = RedisPredictionCache(client, settings)
    try:
        async with asyncio.timeout(settings.timeout_seconds * 4):
            await client.ping()
    except UNAVAILABLE as error:
        logger.warning("prediction cache at %s does not answer yet: %s", settings.url, error)
    else:
        logger.info("prediction cache on: %s, TTL %d s", settings.url, settings.ttl_seconds)
    return cache
