"""Prediction logging: each prediction the service answers goes to the prediction log.

`main.create_app` calls this module's `install`, which, unless API_PREDICTION_LOG_ENABLED=false:

- gives each request an id, the client's X-Request-ID when it is a short token, else a new one,
  and sends it back in X-Request-ID: ground truth that arrives later is joined on it;
- wraps the loaded model so that each answered record (inputs, label, probabilities, model
  version, request id, time) is queued for the log in monitoring/store.py, an SQLite
  file that a background thread appends to. It is safe with several workers and across restarts,
  and never fails a request: what cannot be written is dropped, counted in
  `prediction_log_dropped_records_total{reason}` (with metrics on) and logged as a warning.

The inputs may be personal data: see store.py before turning this on for real users.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar
from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import PREDICTION_LOG
from ..monitoring.store import DROP_REASONS, LoggedModel, PredictionWriter
from .predictor import Prediction, Predictor, record_values

logger = logging.getLogger(__name__)

# The id of the request being answered (see RequestId).
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")
# What a client's X-Request-ID may be to be kept: a short token, nothing that could hold a
# sentence of personal data or break a log line.
REQUEST_ID_RULE = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class PredictionLogSettings(BaseSettings):
    """`API_PREDICTION_LOG_*` variables."""

    model_config = SettingsConfigDict(env_prefix="API_PREDICTION_LOG_", extra="ignore")

    enabled: bool = Field(default=True, description="Log every prediction (false: log nothing)")
    path: Path = Field(default=PREDICTION_LOG, description="The SQLite file")
    retention_days: float = Field(
        default=30, gt=0, description="Rows older than this are deleted when the service starts"
    )
    max_mb: int = Field(
        default=1024, ge=1, description="Size cap of the file; past it, predictions are dropped"
    )
    busy_timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long a write waits while another worker writes"
    )
    queue_size: int = Field(
        default=10_000, ge=1, description="Requests waiting to be written before some are dropped"
    )


class LoggingPredictor:
    """The served predictor, each answer queued for the prediction log."""

    def __init__(
        self, predictor: Predictor, writer: PredictionWriter, field_names: Sequence[str]
    ) -> None:
        self.predictor = predictor
        self.writer = writer
        self.metadata = predictor.metadata
        self.version = predictor.version
        self.classes = predictor.classes
        # A record's values in feature order, as sent (the model gets float32 copies).
        self._values = record_values(field_names)

    async def predict(self, records: Sequence[BaseModel]) -> list[Prediction]:
        predictions = await self.predictor.predict(records)
        try:
            # Probabilities are in class order: the predictor builds them so, and a cache keeps
            # the order it was given.
            self.writer.submit(
                REQUEST_ID.get() or new_request_id(),
                [
                    (self._values(record), p["label"], tuple(p["probabilities"].values()))
                    for record, p in zip(records, predictions, strict=True)
                ],
            )
        except Exception as error:  # a bug here may cost log rows, never an answer
            self.writer.drop("error", len(records), repr(error))
        return predictions


def new_request_id() -> str:
    return os.urandom(16).hex()


class RequestId:
    """ASGI middleware: the request's id in REQUEST_ID and in the answer's X-Request-ID."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
        if not REQUEST_ID_RULE.fullmatch(request_id):
            request_id = new_request_id()
        token = REQUEST_ID.set(request_id)
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


def install(app: FastAPI, settings: PredictionLogSettings | None = None) -> None:
    """Log the predictions of `app` for as long as it runs, and give each request an id."""
    settings = settings or PredictionLogSettings()
    if not settings.enabled:
        logger.info("prediction log off: API_PREDICTION_LOG_ENABLED is false")
        return
    serve = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with serve(app):
            metrics = getattr(app.state, "metrics", None)  # present when metrics are on
            if metrics:  # every reason from 0, so that increase() sees the first drop
                for reason in DROP_REASONS:
                    metrics.log_dropped.labels(reason)
            state = app.state.model
            if state.predictor is None:  # no model, no predictions to log
                yield
                return
            metadata = state.predictor.metadata
            model = LoggedModel(
                metadata.identity.version,
                tuple(metadata.feature_names),
                tuple(metadata.classes),
                numeric=len(metadata.numeric_features),
            )
            writer = PredictionWriter(
                settings.path,
                model,
                queue_size=settings.queue_size,
                busy_timeout=settings.busy_timeout_seconds,
                max_bytes=settings.max_mb * 1024 * 1024,
                retention_days=settings.retention_days,
                on_write=metrics.logged.inc if metrics else None,
                on_drop=metrics.count_dropped if metrics else None,
            )
            writer.start()
            fields = app.state.request_models.field_names
            logging_predictor = LoggingPredictor(state.predictor, writer, fields)
            state.predictor = logging_predictor  # type: ignore[assignment]
            logger.info("prediction log on: %s", settings.path)
            try:
                yield
            finally:
                writer.close()

    app.router.lifespan_context = lifespan
    app.add_middleware(RequestId)  # X-Request-ID on every answer
