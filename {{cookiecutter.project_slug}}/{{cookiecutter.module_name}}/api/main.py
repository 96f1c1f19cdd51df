"""The FastAPI app: `create_app()` builds it, its lifespan loads the model once at startup.

Run it with `make serve`, which starts uvicorn with `--factory` on this module's `create_app`.
The bundle is the folder API_BUNDLE_DIR, or the one logged to the run of API_MODEL_URI on an
MLflow tracking server, downloaded when the app is created (its feature list shapes the request
schema). A missing or broken bundle, or a registry that cannot be reached, does not stop the
service: it logs why, `/health` stays 200 and `/ready` answers 503 with the reason, so an
orchestrator keeps it out of traffic instead of restarting it in a loop. Fix the cause, then
restart the service.
"""

import email.message
import importlib
import importlib.util
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

from {{ cookiecutter.module_name }} import (
    __version__,
)
from {{ cookiecutter.module_name }}.api.bundle import (
    BundleError,
    BundleMetadata,
    load_bundle,
    read_metadata,
)
from {{ cookiecutter.module_name }}.api.predictions import (
    PredictionCache,
    Predictor,
    UnscorableRecordsError,
)
from {{ cookiecutter.module_name }}.api.registry import (
    fetch_bundle,
)
from {{ cookiecutter.module_name }}.api.schemas import (
    ErrorMessage,
    FieldError,
    Health,
    Readiness,
    RequestSchemas,
    ValidationErrors,
    build_schemas,
    field_path,
    request_examples,
)
from {{ cookiecutter.module_name }}.api.settings import (
    Settings,
)

logger = logging.getLogger(__name__)

# Present only in projects generated with the prediction cache; the app works without it.
CACHE_MODULE = f"{__package__}.cache"
# Enough to fix a request; a batch with every field wrong would otherwise list thousands.
MAX_LISTED_ERRORS = 50


def documented(model: type[BaseModel], description: str) -> dict[str, Any]:
    """An entry of a route's `responses`: how OpenAPI documents an error answer."""
    return {"model": model, "description": description}


NOT_READY = {503: documented(ErrorMessage, "No model is loaded (see /ready)")}
INVALID = {
    400: documented(ErrorMessage, "The body cannot be decoded (not UTF-8)"),
    422: documented(ValidationErrors, "The request is invalid"),
}


class ServiceState:
    """What the lifespan loaded, and why the service is not ready when it is not."""

    def __init__(self) -> None:
        self.predictor: Predictor | None = None
        self.cache: PredictionCache | None = None
        self.reason = "the service is starting: the model is not loaded yet"


def configure_logging(level: str) -> None:
    """Show the service's own log lines next to uvicorn's."""
    package_logger = logging.getLogger(__package__)
    package_logger.setLevel(level.upper())
    if not package_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:  [api] %(message)s"))
        package_logger.addHandler(handler)


async def open_cache() -> PredictionCache | None:
    """The prediction cache when this project has one and it is configured, else None."""
    if importlib.util.find_spec(CACHE_MODULE) is None:
        return None
    return await importlib.import_module(CACHE_MODULE).open_cache()


def bundle_folder(settings: Settings) -> Path:
    """The local folder of the bundle to serve: API_BUNDLE_DIR, or API_MODEL_URI's download."""
    return fetch_bundle(settings) if settings.model_uri else settings.bundle_dir


def load_predictor(
    bundle_dir: Path, settings: Settings, expected: BundleMetadata, schemas: RequestSchemas
) -> Predictor:
    """Load the bundle; it must be the one whose features shaped the request schemas."""
    model = load_bundle(bundle_dir, settings.onnx_threads)
    loaded = model.metadata
    if (loaded.feature_names, loaded.classes) != (expected.feature_names, expected.classes):
        raise BundleError(
            f"the bundle in {bundle_dir} changed while the service started: restart it"
        )
    return Predictor(model, schemas.field_names)


async def validated_body(request: Request, model: type[BaseModel]) -> BaseModel:
    """The JSON body as a `model`, validated in one pass by pydantic's JSON parser.

    A declared body costs FastAPI a `json.loads`, then a validation of the resulting dict, and
    much of the time of a single-record request goes there. A body the fast path refuses goes
    through the same steps as FastAPI's (content type, `json.loads`, validation of the value),
    so every invalid request gets the answer a declared body would get: same status, same errors.
    """
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if content_type.partition(";")[0].strip().lower() == "application/json":
        try:
            return model.model_validate_json(body)
        except ValidationError:
            pass  # answered below, exactly as FastAPI would
    if not body:
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([missing])
    value: Any = body
    if is_json(content_type):
        try:
            value = json.loads(body)
        except json.JSONDecodeError as error:
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body", error.pos), "msg": "JSON decode error"}]
            ) from None
        except (ValueError, RecursionError):  # not UTF-8, nested too deep
            raise HTTPException(400, "There was an error parsing the body") from None
    try:
        return model.model_validate(value, from_attributes=True)
    except ValidationError as error:
        raise RequestValidationError(
            [{**item, "loc": ("body", *item["loc"])} for item in error.errors()]
        ) from None


def is_json(content_type: str) -> bool:
    """FastAPI's test: `application/json` or `application/<anything>+json`."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def validation_failed(_request: Request, error: Exception) -> JSONResponse:
    """422 naming each invalid field, e.g. `records[3].mean_radius: Field required`."""
    assert isinstance(error, RequestValidationError)
    problems = [
        FieldError(
            field="body" if item["type"] == "json_invalid" else field_path(item["loc"]),
            message=item["msg"],
            type=item["type"],
        )
        for item in error.errors()
    ]
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    body = ValidationErrors(
        detail=f"{first.field}: {first.message}{more}", errors=problems[:MAX_LISTED_ERRORS]
    )
    return JSONResponse(status_code=422, content=body.model_dump())


def unscorable(error: UnscorableRecordsError, batch: bool) -> JSONResponse:
    """422 for records the model cannot score (far outside anything it was trained on)."""
    message = "the model returns no valid probabilities for these values: check their scale"
    problems = [
        FieldError(
            field=f"records[{position}]" if batch else "body", message=message, type="unscorable"
        )
        for position in error.positions
    ]
    body = ValidationErrors(detail=f"{problems[0].field}: {message}", errors=problems)
    return JSONResponse(status_code=422, content=body.model_dump())


def prediction_response(
    content: dict[str, Any], hits: int | None, total: int, batch: bool
) -> Response:
    """The answer, serialised once: the route builds it to match its response model, so letting
    FastAPI validate it again against that model would only cost time on every request. With a
    cache, `X-Cache` says how many predictions came from it."""
    headers = None
    if hits is not None:
        headers = {"X-Cache": f"{hits}/{total}" if batch else ("hit" if hits else "miss")}
    return Response(to_json(content), media_type="application/json", headers=headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The prediction service for the bundle named by `settings` (default: environment)."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    source = settings.model_uri or str(settings.bundle_dir)
    bundle_dir = settings.bundle_dir
    metadata: BundleMetadata | None = None
    problem: BundleError | None = None
    try:
        # The request schema needs the feature list now; the model itself loads at startup.
        bundle_dir = bundle_folder(settings)
        metadata = read_metadata(bundle_dir)
    except BundleError as error:
        problem = error  # the lifespan logs it, and /ready reports it
    schemas = build_schemas(metadata, settings.max_batch_size)
    examples = request_examples(metadata, settings.examples_file)
    state = ServiceState()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            if metadata is None:  # create_app could not read it: `problem` says why
                raise problem or BundleError(f"no bundle description in {bundle_dir}")
            predictor = load_predictor(bundle_dir, settings, metadata, schemas)
        except BundleError as error:
            state.reason = f"no model loaded: {error}"
            logger.error("%s; /ready answers 503 until the service restarts", state.reason)
        else:
            state.cache = predictor.cache = await open_cache()
            state.predictor = predictor
            logger.info(
                "serving %s version %s from %s (%d features, classes %s)",
                predictor.model.metadata.registered_model,
                predictor.model_version,
                source,
                len(schemas.field_names),
                predictor.classes,
            )
        try:
            yield
        finally:
            state.predictor = None
            state.reason = "the service is shutting down"
            if state.cache is not None:
                await state.cache.close()

    model_name = metadata.registered_model if metadata else "(no model loaded)"
    app = FastAPI(
        title="Prediction service",
        version=__version__,
        summary=f"Predictions of the model {model_name}, served with ONNX Runtime.",
        lifespan=lifespan,
    )
    app.state.service = state
    app.add_exception_handler(RequestValidationError, validation_failed)

    async def ready_predictor() -> Predictor:  # async: a plain def would cost a thread hop
        if state.predictor is None:
            raise HTTPException(status_code=503, detail=state.reason)
        return state.predictor

    loaded = Depends(ready_predictor)
    # /predict reads its body itself (see validated_body): its OpenAPI entry says what it takes.
    # The Record schema is in the components because /predict/batch declares its body.
    record_body = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/Record"},
                    "examples": {f"example {i + 1}": e for i, e in enumerate(examples)},
                }
            },
        }
    }
    batch_example = {"records": [example["value"] for example in examples]}
    batch_examples = {"summary": "Several records", "value": batch_example}
    batch_body = Body(openapi_examples={"records": batch_examples})

    @app.get("/health", response_model=Health, tags=["service"])
    async def health() -> Any:
        """Liveness: the process answers. Says nothing about the model (see /ready)."""
        return Health()

    @app.get(
        "/ready",
        response_model=Readiness,
        tags=["service"],
        responses={503: documented(Readiness, "No model is loaded")},
    )
    async def ready(response: Response) -> Any:
        """Readiness: 200 once the model is loaded, 503 with the reason until then."""
        if state.predictor is None:
            response.status_code = 503
            return Readiness(status="not ready", reason=state.reason)
        return Readiness(status="ready", model_version=state.predictor.model_version)

    @app.get("/model", response_model=BundleMetadata, tags=["model"], responses=NOT_READY)
    async def model_info(predictor: Annotated[Predictor, loaded]) -> Any:
        """The served model: version, metrics, feature schema, data hash, ONNX details."""
        return predictor.model.metadata

    @app.post(
        "/predict",
        response_model=schemas.response,
        tags=["predictions"],
        responses={**INVALID, **NOT_READY},
        openapi_extra=record_body,
    )
    async def predict(request: Request) -> Any:
        """Predict one record: the label, each class's probability and the model version."""
        predictor = state.predictor  # checked first, as the dependency of the other routes is
        if predictor is None:
            raise HTTPException(status_code=503, detail=state.reason)
        record = await validated_body(request, schemas.record)
        try:
            predictions, hits = await predictor.predict([record])
        except UnscorableRecordsError as error:
            return unscorable(error, batch=False)
        answer = {**predictions[0], "model_version": predictor.model_version}
        return prediction_response(answer, hits, 1, batch=False)

    @app.post(
        "/predict/batch",
        response_model=schemas.batch_response,
        description=f"Predict up to {settings.max_batch_size} records in one model call.",
        tags=["predictions"],
        responses={**INVALID, **NOT_READY},
    )
    async def predict_batch(
        batch: Annotated[schemas.batch, batch_body],
        predictor: Annotated[Predictor, loaded],
    ) -> Any:
        records = batch.records  # type: ignore[attr-defined]
        try:
            predictions, hits = await predictor.predict(records)
        except UnscorableRecordsError as error:
            return unscorable(error, batch=True)
        answer = {"model_version": predictor.model_version, "predictions": predictions}
        return prediction_response(answer, hits, len(records), batch=True)

    return app
