"""The service's own endpoints (/health, /ready, /model), the loaded predictor as a dependency
(`PredictorDep`: a 503 with the reason while there is none) and the 422 answer. The prediction
endpoints, which follow the served bundle, are in predictions.py.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ..bundle import BundleMetadata
from .predictor import ModelState, Predictor
from .schemas import ErrorMessage, FieldError, Health, Readiness, RequestModels, ValidationErrors

NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorMessage, "description": "No model is loaded (see /ready)"}
}


# `async def`: FastAPI runs a plain `def` dependency in a worker thread, a hop that costs more.
async def loaded_predictor(request: Request) -> Predictor:
    state: ModelState = request.app.state.model
    if state.predictor is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=state.reason)
    return state.predictor


PredictorDep = Annotated[Predictor, Depends(loaded_predictor)]
router = APIRouter(tags=["service"])


@router.get("/health")
async def health() -> Health:
    """Liveness: the process answers. Says nothing about the model (see /ready)."""
    return Health()


@router.get("/ready", responses={503: {"model": Readiness, "description": "Not ready: why"}})
async def ready(request: Request, response: Response) -> Readiness:
    """Readiness: 200 once the model is loaded, 503 with the reason until then."""
    state: ModelState = request.app.state.model
    if state.predictor is None:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Readiness(status="not ready", reason=state.reason)
    return Readiness(status="ready", model_version=state.predictor.version)


@router.get("/model", responses=NOT_READY)
async def model(predictor: PredictorDep) -> BundleMetadata:
    """The served model: identity, metrics, features with their training ranges, ONNX details."""
    return predictor.metadata


# Enough to fix a request; a batch with every field wrong would otherwise list thousands.
MAX_LISTED_ERRORS = 50
# pydantic's error types for a value past a `ge`/`le` bound: on a feature, its accepted range.
RANGE_ERRORS = {"greater_than_equal", "less_than_equal"}


async def validation_failed(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 naming each invalid field, e.g. `records[3].mean_radius: Field required`. A feature
    outside its accepted range gets a rejection of its own, `out_of_range`, with the range: the
    one place that tells them apart, so monitoring counts them here (its listeners)."""
    items = error.errors()
    problems = [field_error(item, request.app.state.request_models) for item in items]
    rejected = [i["loc"][-1] for i, p in zip(items, problems, strict=True) if p.allowed]
    if rejected:
        for listener in request.app.state.out_of_range_listeners:
            listener(rejected)
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    body = ValidationErrors(
        detail=f"{first.field}: {first.message}{more}", errors=problems[:MAX_LISTED_ERRORS]
    )
    return JSONResponse(body.model_dump(exclude_none=True), status.HTTP_422_UNPROCESSABLE_CONTENT)


def field_error(item: dict[str, Any], models: RequestModels) -> FieldError:
    """One pydantic error as the service reports it."""
    if item["type"] == "json_invalid":  # loc: ("body", character position)
        return FieldError(field="body", message=item["msg"], type=item["type"])
    path = field_path(item["loc"])
    allowed = models.ranges.get(item["loc"][-1]) if item["type"] in RANGE_ERRORS else None
    if allowed is None:
        return FieldError(field=path, message=item["msg"], type=item["type"])
    limits = f"{allowed.minimum:g} to {allowed.maximum:g}"
    message = f"{item['input']!r} is outside the accepted range {limits}"
    return FieldError(field=path, message=message, type="out_of_range", allowed=allowed)


def field_path(location: tuple[Any, ...]) -> str:
    """("body", "records", 3, "mean_radius") -> "records[3].mean_radius"."""
    path = ""
    for part in location[1:] if location[:1] == ("body",) else location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.removeprefix(".") or "body"
