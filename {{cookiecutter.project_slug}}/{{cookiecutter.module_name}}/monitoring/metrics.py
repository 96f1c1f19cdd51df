"""Prometheus metrics of the service at GET /metrics, one of its optional parts (api/main.py,
PARTS), unless API_METRICS_ENABLED=false.

`install(app)` adds a pure-ASGI middleware that counts and times every request by route template
(never the raw path), method and status, and counts the cache's answers from its X-Cache header
(the cache knows nothing of Prometheus); a listener on the 422 handler (api/routes.py)
counting out-of-range values by feature; and GET /metrics as a plain route (a mounted app
answers it with a redirect).
`attached(app)` times each model call and counts predictions by class (and, for an image model,
each picture's size, brightness and contrast: pictures.py). The gauges (the model's
identity, drift.json's verdicts) are computed at each scrape, so every worker reports the same
values and none needs a multiprocess mode. Each metric update costs about a microsecond: the hot
path makes six. With several workers in one container, PROMETHEUS_MULTIPROC_DIR must name an empty
folder at start (the image's command sees to it), and /metrics adds up every worker's counts.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..api.predictor import ModelState, Observer, Prediction
from ..inference import Row
from .summary import DriftSummary, DriftSummaryError, read_summary

# Seconds. The request buckets bracket the p99 alert (0.1 s); the model answers in microseconds.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
MODEL_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
UNMATCHED = "unmatched"  # the route label of a request no route matched (a 404)


class ServiceMetrics:
    """The service's own series, created in `registry`; those of pictures for an image model."""

    def __init__(self, registry: CollectorRegistry, pictures: bool = False) -> None:
        self.requests = Counter(
            "http_requests", "Requests answered, by route template, method and status",
            ["route", "method", "status"], registry=registry,
        )  # fmt: skip
        self.latency = Histogram(
            "http_request_duration_seconds", "Time to answer a request, by route template",
            ["route", "method"], buckets=REQUEST_BUCKETS, registry=registry,
        )  # fmt: skip
        self.inference = Histogram(
            "model_inference_duration_seconds", "Time of one model call (a request's records)",
            buckets=MODEL_BUCKETS, registry=registry,
        )  # fmt: skip
        self.predictions = Counter(
            "model_predictions", "Predictions answered, by predicted class",
            ["class"], registry=registry,
        )  # fmt: skip
        self.out_of_range = Counter(
            "model_input_out_of_range", "Values rejected outside their feature's accepted range",
            ["feature"], registry=registry,
        )  # fmt: skip
        self.cache = Counter(
            "prediction_cache_lookups", "Records looked up in the prediction cache, by result",
            ["result"], registry=registry,
        )  # fmt: skip
        self.logged = Counter(
            "prediction_log_records", "Predictions written to the prediction log",
            registry=registry,
        )  # fmt: skip
        self.log_evicted = Counter(
            "prediction_log_evicted_records",
            "Oldest predictions deleted to keep the prediction log under its size cap",
            registry=registry,
        )  # fmt: skip
        self.log_dropped = Counter(
            "prediction_log_dropped_records", "Predictions the prediction log could not keep",
            ["reason"], registry=registry,
        )  # fmt: skip
        self.pictures = None
        if pictures:  # the image task's series (pictures.py)
            from .pictures import PictureMetrics

            self.pictures = PictureMetrics(registry)
        # Labelled children, looked up once: `labels()` costs more than the increment itself.
        self._answered: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._answered.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._answered[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_cache(self, header: bytes) -> None:
        """Count the records of an X-Cache header: `hit`, `miss` or `<hits>/<records>`."""
        if header in (b"hit", b"miss"):
            found, total = int(header == b"hit"), 1
        else:
            hits, _, records = header.partition(b"/")
            try:
                found, total = int(hits), int(records)
            except ValueError:
                return  # not the cache's header
        self.cache.labels("hit").inc(found)
        self.cache.labels("miss").inc(total - found)

    def count_out_of_range(self, features: Sequence[str]) -> None:
        for feature in features:
            self.out_of_range.labels(feature).inc()

    def count_dropped(self, reason: str, count: int) -> None:
        self.log_dropped.labels(reason).inc(count)


class ServiceState:
    """A collector of the model's identity and drift.json, read at each scrape."""

    def __init__(self, state: ModelState, drift_summary: Path) -> None:
        self.state = state
        self.drift_summary = drift_summary

    def collect(self) -> Iterator[Metric]:
        predictor = self.state.predictor
        if predictor is not None:
            identity = predictor.metadata.identity
            info = GaugeMetricFamily(
                "model_info", "The served model (1): registered name, version, model.onnx sha256",
                labels=["model", "version", "sha256"],
            )  # fmt: skip
            info.add_metric([identity.registered_model, str(identity.version), identity.sha256], 1)
            yield info
        # A small file, read at each scrape; none yet, or half-written: published once it is whole.
        with contextlib.suppress(DriftSummaryError):
            yield from drift_metrics(read_summary(self.drift_summary))


def drift_metrics(summary: DriftSummary) -> Iterator[Metric]:
    score = GaugeMetricFamily(
        "model_drift_score", "Drift score by feature: a p-value or a distance (see drift.json)",
        labels=["feature"],
    )  # fmt: skip
    detected = GaugeMetricFamily(
        "model_drift_detected", "1 when the feature drifted in the last drift report",
        labels=["feature"],
    )  # fmt: skip
    for name, feature in summary.features.items():
        score.add_metric([name], feature.score)
        detected.add_metric([name], float(feature.drifted))
    yield score
    yield detected
    yield GaugeMetricFamily(
        "model_drift_share", "Share of the features that drifted", value=summary.drift_share
    )
    yield GaugeMetricFamily(
        "model_dataset_drift_detected", "1 when the last drift report found the data drifted",
        value=float(summary.dataset_drift),
    )  # fmt: skip
    yield GaugeMetricFamily(
        "model_drift_report_timestamp_seconds", "When the last drift report was made (Unix time)",
        value=summary.created_at.timestamp(),
    )  # fmt: skip
    if summary.quality is not None:
        accuracy = GaugeMetricFamily(
            "model_accuracy", "Accuracy on labelled recent traffic, and on the reference",
            labels=["data"],
        )  # fmt: skip
        accuracy.add_metric(["labelled"], summary.quality.accuracy)
        accuracy.add_metric(["reference"], summary.quality.reference_accuracy)
        yield accuracy


def route_label(scope: Scope, root: str) -> str:
    """The route the app matched (a 405 too), a mount's path (`root` is the root path before the
    app ran: a mount appends its path to it), or UNMATCHED for a 404."""
    route = scope.get("route")
    if route is not None:
        return route.path_format
    mount = scope.get("root_path", "")[len(root) :]
    return mount + "/{path}" if mount else UNMATCHED


class MetricsMiddleware:
    """ASGI middleware: count, time and label every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        root = scope.get("root_path", "")
        status = 500  # unless the app answers: an exception that escaped it
        cache_header = None

        async def observing_send(message: Message) -> None:
            nonlocal status, cache_header
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"x-cache":
                        cache_header = value
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            seconds = time.perf_counter() - start
            self.metrics.observe(route_label(scope, root), scope["method"], status, seconds)
            if cache_header is not None:
                self.metrics.count_cache(cache_header)


def count_predictions(metrics: ServiceMetrics, classes: list[str]) -> Observer:
    """An observer of the predictor that counts its answers by class."""
    counters = {label: metrics.predictions.labels(label) for label in classes}

    def observe(rows: Sequence[Row], predictions: list[Prediction]) -> None:
        for prediction in predictions:
            counters[prediction["label"]].inc()

    return observe


def install(app: FastAPI) -> None:
    settings = app.state.settings
    if not settings.metrics_enabled:
        return
    disable_created_metrics()  # no `_created` series: Prometheus has no use for them here
    registry = CollectorRegistry()
    metadata = app.state.request_models.metadata  # None: no model, the service answers 503
    metrics = ServiceMetrics(registry, pictures=bool(metadata and metadata.image_feature))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # every worker's files, added up: `registry`
        registry = CollectorRegistry()  # would show this worker only
        MultiProcessCollector(registry)
    registry.register(ServiceState(app.state.model, settings.metrics_drift_summary))
    app.state.metrics = metrics
    app.state.out_of_range_listeners.append(metrics.count_out_of_range)

    async def scrape() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    app.add_api_route("/metrics", scrape, methods=["GET"], include_in_schema=False)
    app.add_middleware(MetricsMiddleware, metrics=metrics)


@contextlib.asynccontextmanager
async def attached(app: FastAPI) -> AsyncIterator[None]:
    """While the app runs, time the loaded model's calls and count its answers by class."""
    metrics: ServiceMetrics | None = getattr(app.state, "metrics", None)
    predictor = app.state.model.predictor
    if metrics is not None and predictor is not None:
        predictor.model_timer = metrics.inference.observe
        predictor.observers.append(count_predictions(metrics, predictor.classes))
        if metrics.pictures is not None:
            predictor.observers.append(metrics.pictures.observer())
        for feature in predictor.metadata.numeric_features:  # each ranged feature's series from
            metrics.out_of_range.labels(feature.name)  # 0, so increase() sees the first rejection
    yield
