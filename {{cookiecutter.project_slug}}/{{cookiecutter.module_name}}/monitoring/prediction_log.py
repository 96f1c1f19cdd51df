"""Prediction logging, one of the service's optional parts (api/main.py, PARTS), unless
API_PREDICTION_LOG_ENABLED=false. `install(app)` gives each request an id (the client's
X-Request-ID when it is a short token, else a new one) and returns it in X-Request-ID, so that
ground truth arriving later can be joined on it. `attached(app)` queues each answered record for
the log (store.py). The inputs may be personal data: see store.py before logging real users.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..api.predictor import Observer, Prediction
from ..inference import Row
from .store import DROP_REASONS, LoggedModel, PredictionWriter

logger = logging.getLogger(__name__)

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")
# A client's X-Request-ID is kept only as a short token: nothing that could hold a sentence of
# personal data or break a log line.
REQUEST_ID_RULE = re.compile(r"[A-Za-z0-9._:-]{1,64}")


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


def logging_to(writer: PredictionWriter) -> Observer:
    """An observer of the predictor that queues each answered request for the log."""

    def observe(rows: Sequence[Row], predictions: list[Prediction]) -> None:
        try:
            # Rows hold the values as the client sent them (the model gets float32 copies), or
            # a picture's measures in LoggedModel.of's order; the predictor builds probabilities
            # in class order, and a cache keeps that order.
            writer.submit(
                REQUEST_ID.get() or new_request_id(),
                [
                    (row, p["label"], tuple(p["probabilities"].values()))
                    for row, p in zip(rows, predictions, strict=True)
                ],
            )
        except Exception as error:  # a bug here may cost log rows, never an answer
            writer.drop("error", len(rows), repr(error))

    return observe


def install(app: FastAPI) -> None:
    if app.state.settings.prediction_log_enabled:
        app.add_middleware(RequestId)


@contextlib.asynccontextmanager
async def attached(app: FastAPI) -> AsyncIterator[None]:
    """While the app runs, log the loaded predictor's answers."""
    settings, predictor = app.state.settings, app.state.model.predictor
    if not settings.prediction_log_enabled:
        logger.info("prediction log off: API_PREDICTION_LOG_ENABLED is false")
    if not settings.prediction_log_enabled or predictor is None:
        yield
        return
    metrics = getattr(app.state, "metrics", None)  # present when metrics are on
    if metrics:  # every reason from 0, so that increase() sees the first drop
        for reason in DROP_REASONS:
            metrics.log_dropped.labels(reason)
    writer = PredictionWriter(
        settings.prediction_log_path,
        LoggedModel.of(predictor.metadata),
        queue_size=settings.prediction_log_queue_size,
        busy_timeout=settings.prediction_log_busy_timeout_seconds,
        max_bytes=settings.prediction_log_max_mb * 1024 * 1024,
        retention_days=settings.prediction_log_retention_days,
        on_write=metrics.logged.inc if metrics else None,
        on_drop=metrics.count_dropped if metrics else None,
        on_evict=metrics.log_evicted.inc if metrics else None,
    )
    writer.start()
    predictor.observers.append(logging_to(writer))
    logger.info("prediction log on: %s", settings.prediction_log_path)
    try:
        yield
    finally:
        writer.close()
