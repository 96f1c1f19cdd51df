"""/predict and /predict/batch: records in JSON, declared with the models built from the served
bundle (schemas.py). `prediction_router(models)` declares them when the app is created.
No `from __future__ import annotations`: FastAPI could not find those local models by name.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body

from .routes import NOT_READY, PredictorDep
from .schemas import ErrorMessage, RequestModels, ValidationErrors

INVALID: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorMessage, "description": "The body is not UTF-8"},
    413: {"description": "The body is larger than API_MAX_BODY_BYTES"},
    422: {"model": ValidationErrors, "description": "The request is invalid, field by field"},
}


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
