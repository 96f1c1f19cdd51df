"""Dependencies of the routes: the settings and the loaded model, as `Annotated` types.

A route declares `predictor: PredictorDep` (or `settings: SettingsDep`, `state: ModelStateDep`)
and FastAPI provides it, from `app.state`, where `create_app` put the settings and the lifespan
the model. The shipped routes need no setting while they answer: the limits are part of the
request schema, built when the app is created. The functions are `async def`: FastAPI runs a
plain `def` dependency in a worker thread, a hop that costs more than these few lines.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from .predictor import ModelState, Predictor
from .settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_model_state(request: Request) -> ModelState:
    return request.app.state.model


async def get_predictor(request: Request) -> Predictor:
    return loaded_predictor(request)


def loaded_predictor(request: Request) -> Predictor:
    """The loaded model; 503 with the reason while there is none (see /ready)."""
    state: ModelState = request.app.state.model
    if state.predictor is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=state.reason)
    return state.predictor


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelStateDep = Annotated[ModelState, Depends(get_model_state)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
