"""The service's endpoints: thin functions over the predictor (predictor.py).

`router` holds the routes that do not depend on the model's features. /predict and
/predict/batch take models built from the served bundle when the app is created (schemas.py), so
`prediction_router(models)` declares them around those. A route receives the loaded predictor
through `PredictorDep` (a 503 with the reason while there is none).

No `from __future__ import annotations`: FastAPI reads the route functions' annotations, and the
request models are local variables it could not find by name.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response, status

from ..bundle import BundleMetadata
from .predictor import ModelState, Predictor
from .schemas import ErrorMessage, Health, Readiness, RequestModels, ValidationErrors

NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorMessage, "description": "No model is loaded (see /ready)"}
}
INVALID: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorMessage, "description": "The body is not UTF-8"},
    413: {"description": "The body is larger than API_MAX_BODY_BYTES"},
    422: {"model": ValidationErrors, "description": "The request is invalid, field by field"},
}


# `async def`: FastAPI runs a plain `def` dependency in a worker thread, a hop that costs more.
async def loaded_predictor(request: Request) -> Predictor:
    """The loaded model; 503 with the reason while there is none (see /ready)."""
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


def prediction_router(models: RequestModels) -> APIRouter:
    """/predict and /predict/batch for the request models of the served bundle."""
    predictions = APIRouter(tags=["predictions"], responses={**INVALID, **NOT_READY})
    several = {"records": [example["value"] for example in models.examples.values()]}
    batch_examples = {"records": {"summary": "Several records", "value": several}}

    @predictions.post("/predict", response_model=models.prediction_response)
    async def predict(
        record: Annotated[models.record, Body(openapi_examples=models.examples)],
        predictor: PredictorDep,
    ) -> Any:
        """Predict one record: the label, each class's probability and the model version."""
        [prediction] = await predictor.predict([record])
        return {**prediction, "model_version": predictor.version}

    @predictions.post("/predict/batch", response_model=models.batch_response)
    async def predict_batch(
        batch: Annotated[models.batch, Body(openapi_examples=batch_examples)],
        predictor: PredictorDep,
    ) -> Any:
        """Predict up to API_MAX_BATCH_SIZE records with one call of the model, in order."""
        answers = await predictor.predict(batch.records)
        return {"model_version": predictor.version, "predictions": answers}

    return predictions
