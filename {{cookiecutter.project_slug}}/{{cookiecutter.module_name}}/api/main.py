"""The FastAPI app: `create_app()` assembles it, its lifespan loads the model (`make serve`).

A missing or broken bundle does not stop the service: /health stays 200, /ready and the
prediction routes answer 503 with the reason, so an orchestrator keeps it out of traffic
instead of restarting it in a loop. Fix the bundle, then restart.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline

from .. import __version__
from ..bundle import BundleError, BundleMetadata, read_verified
{%- if cookiecutter.use_monitoring %}
from ..monitoring import metrics, prediction_log
{%- endif %}
{%- set local_parts = (["cache"] if cookiecutter.use_redis_cache else []) + (["explain"] if cookiecutter.use_explain_api else []) %}
{%- if local_parts %}
from . import {{ local_parts | join(", ") }}
{%- endif %}
from .predictions import prediction_router
from .predictor import ModelState
from .routes import router, validation_failed
from .schemas import build_request_models
from .settings import Settings

# The optional parts chosen when the project was generated. Each has `install(app)` (middleware,
# routes) and `attached(app)` (plugs into the loaded predictor while the app runs). In order: the
# cache answers before the model, metrics count what was answered, the log keeps it{% if cookiecutter.use_explain_api %}; explain
# adds POST /explain{% endif %}.
{%- set parts = (["cache"] if cookiecutter.use_redis_cache else []) + (["metrics", "prediction_log"] if cookiecutter.use_monitoring else []) + (["explain"] if cookiecutter.use_explain_api else []) %}
PARTS = ({{ parts | join(", ") }}{{ "," if parts | length == 1 else "" }})


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model (without it the service still starts), attach the parts until the end."""
    settings: Settings = app.state.settings
    state: ModelState = app.state.model
    state.load(settings.bundle_dir, settings.onnx_threads, app.state.request_models)
    async with AsyncExitStack() as parts:
        for part in PARTS:
            await parts.enter_async_context(part.attached(app))
        yield
    state.predictor = None
    state.reason = "the service is shutting down"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The prediction service for the bundle named by `settings` (default: the environment)."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    metadata: BundleMetadata | None
    try:  # the metadata now, for the request schema; the model in the lifespan
        metadata = read_verified(settings.bundle_dir)
    except BundleError:
        metadata = None  # the lifespan meets the same problem, logs it and reports it in /ready
    models = build_request_models(
        metadata,
        settings.range_margin,
        settings.max_batch_size,
        settings.max_text_chars,
        settings.strict_categories,
        settings.examples_file,
    )
    name = metadata.identity.registered_model if metadata else "(no model loaded)"
    app = FastAPIOffline(  # FastAPI whose /docs and /redoc load no CDN: they work offline
        # Prediction routes before the docs': routes are tried in order (measured: ~4 us a request).
        routes=prediction_router(models).routes,
        static_url="/docs-static",
        title="Prediction service",
        summary=f"Predictions of the model {name}, served with ONNX Runtime.",
        version=__version__,
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,  # 413 before parsing, declared or chunked
        # FastAPI's OpenTelemetry hooks, unused here, cost ~4% of /predict's throughput (measured).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        exception_handlers={RequestValidationError: validation_failed},
    )
    app.state.settings = settings
    app.state.request_models = models
    app.state.model = ModelState()
    app.state.out_of_range_listeners = []  # see validation_failed in routes.py
    app.include_router(router)
    for part in PARTS:
        part.install(app)
    return app


def configure_logging(level: str) -> None:
    """Show the service's own log lines (the package's, monitoring's too) next to uvicorn's."""
    package_logger = logging.getLogger(__package__.partition(".")[0])
    package_logger.setLevel(level.upper())
    if not package_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:  [api] %(message)s"))
        package_logger.addHandler(handler)
