"""The 422 answer: each invalid field named, e.g. `records[3].mean_radius: Field required`.

A feature outside its accepted range is a rejection of its own, `out_of_range`, with the range
in the answer; this handler is the one place that tells it apart, so monitoring counts them
here (`out_of_range_listeners`). Other errors keep FastAPI's answers: 503 `{"detail": reason}`
without a model (routes.py), 413 for a body over API_MAX_BODY_BYTES (before parsing).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .schemas import AllowedRange, FieldError, RequestModels, ValidationErrors

# Enough to fix a request; a batch with every field wrong would otherwise list thousands.
MAX_LISTED_ERRORS = 50
# pydantic's error types for a value past a `ge`/`le` bound: on a feature, its accepted range.
RANGE_ERRORS = {"greater_than_equal", "less_than_equal"}


def add_error_handlers(app: FastAPI) -> None:
    app.state.out_of_range_listeners = []  # called with each rejection's out-of-range features
    app.add_exception_handler(RequestValidationError, validation_failed)


async def validation_failed(request: Request, error: Exception) -> JSONResponse:
    """422 naming each invalid field; out-of-range features with their accepted range."""
    assert isinstance(error, RequestValidationError)
    models: RequestModels = request.app.state.request_models
    items = error.errors()
    problems = [field_error(item, models.ranges) for item in items]
    rejected = [
        i["loc"][-1] for i, p in zip(items, problems, strict=True) if p.type == "out_of_range"
    ]
    if rejected:
        for listener in request.app.state.out_of_range_listeners:
            listener(rejected)
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    body = ValidationErrors(
        detail=f"{first.field}: {first.message}{more}", errors=problems[:MAX_LISTED_ERRORS]
    )
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content=body.model_dump(exclude_none=True),
    )


def field_error(item: dict[str, Any], ranges: dict[str, AllowedRange]) -> FieldError:
    """One pydantic error as the service reports it."""
    if item["type"] == "json_invalid":  # loc: ("body", character position)
        return FieldError(field="body", message=item["msg"], type=item["type"])
    path = field_path(item["loc"])
    allowed = ranges.get(item["loc"][-1]) if item["type"] in RANGE_ERRORS else None
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
