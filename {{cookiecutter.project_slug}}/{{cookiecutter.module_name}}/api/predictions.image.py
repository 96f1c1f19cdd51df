"""/predict and /predict/batch of an image model: pictures uploaded as a multipart form (field
`image`, or `images` for several), as `curl -F image=@digit.png` sends them.

A picture is read by its content, not by the type the client declares: PNG or JPEG (images.py)
decodes, anything else is a 415; a file larger than API_MAX_IMAGE_BYTES, or of more pixels than
images.MAX_PIXELS, a 413; a damaged one a 422; each answer one line of JSON naming the picture.
The model reads `images.pixels` of the picture; the observers (metrics, the prediction log) get
`images.measures` of it, what monitoring keeps instead of the pixels. Decoding a small picture
takes tens of microseconds, so it runs in the event loop, as the model does (predictor.py).
`prediction_router(models)` declares the routes when the app is created. No `from __future__
import annotations`: FastAPI could not find the local models by name.
"""

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Request, UploadFile, status
from PIL import Image
from pydantic import BaseModel

from .. import images
from .routes import NOT_READY, PredictorDep
from .schemas import ErrorMessage, RequestModels
from .settings import Settings

INVALID: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorMessage, "description": "The body is not a well-formed multipart form"},
    413: {"model": ErrorMessage, "description": "Too large: API_MAX_IMAGE_BYTES, pixels, body"},
    415: {"model": ErrorMessage, "description": "Not a PNG or JPEG picture"},
    422: {"model": ErrorMessage, "description": "A field is missing, or a picture is damaged"},
}
# The answer to each of images.py's errors; any other ImageError is a damaged picture.
STATUS = {
    images.UnsupportedImageError: status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    images.ImageTooLargeError: status.HTTP_413_CONTENT_TOO_LARGE,
}


async def decoded(upload: UploadFile, field: str, max_bytes: int) -> Image.Image:
    """The picture of one uploaded file; an HTTPException naming it when it cannot be read."""
    named = f"{field} ({upload.filename})" if upload.filename else field
    if upload.size is not None and upload.size > max_bytes:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"{named}: {upload.size:,} bytes, more than the {max_bytes:,} accepted",
        )
    try:
        return images.decode(await upload.read())
    except images.ImageError as error:
        code = STATUS.get(type(error), status.HTTP_422_UNPROCESSABLE_CONTENT)
        raise HTTPException(code, detail=f"{named}: {error}") from None


def prediction_router(models: RequestModels) -> APIRouter:
    """/predict and /predict/batch for the image model of the served bundle."""
    predictions = APIRouter(tags=["predictions"], responses={**INVALID, **NOT_READY})
    feature = models.metadata.image_feature if models.metadata else None
    taken = f"{feature.width} x {feature.height}, {feature.mode}" if feature else "its size"

    async def predicted(
        request: Request, uploads: Sequence[UploadFile], fields: Sequence[str], predictor: Any
    ) -> list[dict[str, Any]]:
        """The predictions of the uploaded pictures, in order."""
        settings: Settings = request.app.state.settings
        image_feature = predictor.metadata.image_feature
        pictures = [
            await decoded(upload, field, settings.max_image_bytes)
            for upload, field in zip(uploads, fields, strict=True)
        ]
        records: list[BaseModel] = [
            models.record.model_validate({image_feature.name: images.pixels(p, image_feature)})
            for p in pictures
        ]
        # Monitoring keeps these measures of a picture, not its pixels: measured (about 80 us of a
        # request's CPU for a 28 x 28 picture) only when someone looks.
        observed = None
        if predictor.observers:
            observed = [tuple(images.measures(p).values()) for p in pictures]
        return await predictor.predict(records, observed)

    @predictions.post("/predict", response_model=models.prediction_response)
    async def predict(
        image: Annotated[UploadFile, File(description=f"A PNG or JPEG picture (read at {taken})")],
        request: Request,
        predictor: PredictorDep,
    ) -> Any:
        """Predict one picture: the label, each class's probability and the model version."""
        [prediction] = await predicted(request, [image], ["image"], predictor)
        return {**prediction, "model_version": predictor.version}

    @predictions.post("/predict/batch", response_model=models.batch_response)
    async def predict_batch(
        images_: Annotated[
            list[UploadFile],
            File(
                alias="images",
                min_length=1,
                max_length=models.max_batch_size,
                description="Several PNG or JPEG pictures",
            ),
        ],
        request: Request,
        predictor: PredictorDep,
    ) -> Any:
        """Predict up to API_MAX_BATCH_SIZE pictures with one call of the model, in order."""
        fields = [f"images[{index}]" for index in range(len(images_))]
        answers = await predicted(request, images_, fields, predictor)
        return {"model_version": predictor.version, "predictions": answers}

    return predictions
