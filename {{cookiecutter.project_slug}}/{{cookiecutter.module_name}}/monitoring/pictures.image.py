"""What monitoring keeps and compares of a picture, for an image model (the other tasks have no
such file: store.py, metrics.py, drift.py and traffic.py import it for an image model only).

The prediction log keeps `images.measures` of each uploaded picture, never its pixels: MEASURES,
in that order. `make drift` compares them with the training split's pictures: the size,
brightness and contrast (VALUES) each with Evidently's value drift, and the 7 x 7 grey thumbnails
(THUMBNAILS) together as one embedding, EMBEDDING, with Evidently's EmbeddingsDrift: a classifier
learns to tell recent thumbnails from training ones; its ROC AUC is about 0.5 when it cannot.
`make simulate-traffic` uploads picture files, then `shifted` copies, then BMP ones (415). The
service's metrics record each answered picture's size, brightness and contrast (PictureMetrics),
a live view of what `make drift` judges later.
"""

from __future__ import annotations

import io
import mimetypes
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image
from prometheus_client import CollectorRegistry, Histogram

from .. import images
from ..bundle import ImageFeature
from ..config import PROJ_ROOT
from ..errors import PipelineError
from ..params import DriftParams
from .summary import FeatureDrift

if TYPE_CHECKING:  # pandas only where the drift job uses it: the service imports this module
    import pandas as pd

VALUES = ("width", "height", "brightness", "contrast")
MEASURES = images.MEASURES  # VALUES, then the thumbnail's cells
THUMBNAILS = MEASURES[len(VALUES) :]
EMBEDDING = "thumbnail"
# What drift.json reports for an image model: each value, and the thumbnails as one feature.
COMPARED = (*VALUES, EMBEDDING)
# Evidently's default for its classifier method: drift when the ROC AUC is above 0.55.
EMBEDDING_THRESHOLD = 0.55
EMBEDDING_METHOD = "classifier ROC AUC"
# Training pictures measured for the reference: enough for the tests, and the report (which
# also draws the thumbnails in 2-D with t-SNE) stays under about 5 s on 2 cores.
REFERENCE_ROWS = 1000


# Metrics: brightness and contrast are 0..1; a size in pixels, from an 8 x 8 icon to the
# 16-megapixel cap (images.MAX_PIXELS).
SHARE_BUCKETS = tuple(step / 10 for step in range(1, 11))
PIXEL_BUCKETS = tuple(4.0**power for power in range(3, 13))


class PictureInputError(PipelineError):
    """A picture or a measure cannot be compared; the message says why in one line."""


def picture_path(value: str) -> Path:
    """A split's or a manifest's path of a picture: relative to the project root (or absolute)."""
    return PROJ_ROOT / value


def read_picture(value: str, source: str) -> Image.Image:
    try:
        return images.decode(picture_path(value).read_bytes())
    except OSError as error:
        raise PictureInputError(f"{source}: cannot read {value}: {error.strerror}") from None
    except images.ImageError as error:
        raise PictureInputError(f"{source}: {value}: {error}") from None


def measured(frame: pd.DataFrame, column: str, source: str) -> pd.DataFrame:
    """images.measures of the picture at each path of `frame[column]`, one row each."""
    if column not in frame:
        raise PictureInputError(f"{source} has no {column!r} column of picture paths")
    import pandas as pd

    rows = [images.measures(read_picture(str(value), source)) for value in frame[column]]
    return pd.DataFrame(rows, columns=list(MEASURES), index=frame.index)


def compared(frame: pd.DataFrame, feature: ImageFeature, source: str) -> pd.DataFrame:
    """The measures `frame` holds (the prediction log), or those of its pictures (a manifest)."""
    if set(MEASURES) <= set(frame.columns):
        return checked(frame, source)
    return measured(frame, feature.name, source)


def pixel_rows(frame: pd.DataFrame, feature: ImageFeature, source: str) -> list[tuple[Any]]:
    """The model's rows of the pictures at `frame[feature.name]`: `(pixels,)` each."""
    return [
        (images.pixels(read_picture(str(value), source), feature),) for value in frame[feature.name]
    ]


def checked(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """The MEASURES of `frame` as numbers; one line for a measure missing or not a number (a
    picture always has every one: a log or a CSV that lacks one was not written by this task)."""
    missing = [name for name in MEASURES if name not in frame]
    if missing:
        raise PictureInputError(f"{source} lacks the picture measures {', '.join(missing[:3])}")
    import pandas as pd

    numbers = frame[list(MEASURES)].apply(pd.to_numeric, errors="coerce")
    for name in MEASURES:
        bad = numbers[name].isna()
        if bad.any():
            raise PictureInputError(
                f"{source}: {bad.sum()} rows have no number in {name!r}: measure the pictures "
                "again, or move the log away (the service starts a new one)"
            )
    return numbers


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, params: DriftParams) -> Any:
    """Evidently's report with its tests: value drift of each of VALUES (with `params.method`),
    and EmbeddingsDrift of the THUMBNAILS, tested against EMBEDDING_THRESHOLD."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import EmbeddingsDrift
    from evidently.metrics.embeddings import ModelDriftMethod
    from evidently.presets import DataDriftPreset
    from evidently.tests import lte

    definition = DataDefinition(
        numerical_columns=list(MEASURES), embeddings={EMBEDDING: list(THUMBNAILS)}
    )
    preset = DataDriftPreset(
        columns=list(VALUES),
        drift_share=params.drift_share,
        num_method=params.method,
        num_threshold=params.threshold,
    )
    embedding = EmbeddingsDrift(
        embeddings_name=EMBEDDING,
        drift_method=ModelDriftMethod(threshold=EMBEDDING_THRESHOLD, bootstrap=False),
        tests=[lte(EMBEDDING_THRESHOLD)],
    )
    with warnings.catch_warnings():
        # A thumbnail's corner is blank in every digit: its correlations divide by zero.
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        return Report([preset, embedding], include_tests=True).run(
            current_data=Dataset.from_pandas(current[list(MEASURES)], data_definition=definition),
            reference_data=Dataset.from_pandas(
                reference[list(MEASURES)], data_definition=definition
            ),
        )


def with_embedding(result: dict[str, Any], features: dict[str, FeatureDrift],
                   params: DriftParams) -> tuple[dict[str, FeatureDrift], float, bool]:  # fmt: skip
    """The value measures' verdicts (drift.verdicts) and the thumbnails' (EMBEDDING, from its
    test's status), then the share and the data's verdict counting the thumbnails as one feature
    more (Evidently's share counts columns only: the same rule, `share >= drift_share`)."""
    [metric] = [m for m in result["metrics"] if m["config"]["type"].endswith(":EmbeddingsDrift")]
    [test] = [t for t in result["tests"] if t["metric_config"]["metric_id"] == metric["id"]]
    status = getattr(test["status"], "value", test["status"])
    if status == "ERROR":
        raise PipelineError(f"Evidently could not compute {metric['metric_name']}")
    features = {
        **features,
        EMBEDDING: FeatureDrift(
            score=metric["value"], method=EMBEDDING_METHOD, threshold=EMBEDDING_THRESHOLD,
            drifted=status != "SUCCESS",
        ),
    }  # fmt: skip
    share = sum(feature.drifted for feature in features.values()) / len(features)
    return features, share, share >= params.drift_share


@dataclass(frozen=True)
class Upload:
    """A picture file as `make simulate-traffic` sends it."""

    filename: str
    data: bytes


def upload(path: Path) -> Upload:
    return Upload(path.name, path.read_bytes())


def multipart(files: dict[str, Upload]) -> tuple[bytes, str]:
    """A multipart/form-data body holding `files` by field name, and its content type."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, file in files.items():
        media_type = mimetypes.guess_type(file.filename)[0] or "application/octet-stream"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{file.filename}"\r\nContent-Type: {media_type}\r\n\r\n'
        )
        body += head.encode() + file.data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def shifted_upload(file: Upload, factor: float) -> Upload:
    return Upload(file.filename, shifted(file.data, factor))


def unsupported_upload(file: Upload) -> Upload:
    """The picture as a BMP file: a type the service refuses (415)."""
    buffer = io.BytesIO()
    images.decode(file.data).save(buffer, format="BMP")
    return Upload(f"{file.filename.rsplit('.', 1)[0]}.bmp", buffer.getvalue())


def shifted(data: bytes, factor: float) -> bytes:
    """A drifted copy of a picture, as a new scanner would send it: `factor` times larger,
    washed out (grey background, lower contrast); PNG."""
    picture = images.decode(data).convert("L")
    size = (round(picture.width * factor), round(picture.height * factor))
    washed = picture.resize(size).point(lambda value: 96 + value * 0.5)
    return png(washed)


def png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


class PictureMetrics:
    """What an image model's service sees of the pictures it answers."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.pixels = Histogram(
            "model_input_picture_pixels", "Size of the answered pictures (width x height)",
            buckets=PIXEL_BUCKETS, registry=registry,
        )  # fmt: skip
        self.brightness = Histogram(
            "model_input_picture_brightness", "Mean grey value of the answered pictures, 0..1",
            buckets=SHARE_BUCKETS, registry=registry,
        )  # fmt: skip
        self.contrast = Histogram(
            "model_input_picture_contrast", "Standard deviation of their grey values, 0..1",
            buckets=SHARE_BUCKETS, registry=registry,
        )  # fmt: skip

    def observer(self) -> Callable[[Sequence[Sequence[float]], list[Any]], None]:
        """An observer of the predictor (api/predictor.py) recording each answered picture's
        measures, given in MEASURES order; a row of any other length is not measures: left out."""
        count = len(MEASURES)
        width, height, brightness, contrast = (MEASURES.index(name) for name in VALUES)

        def observe(rows: Sequence[Sequence[float]], predictions: list[Any]) -> None:
            for row in rows:
                if len(row) == count:
                    self.pixels.observe(row[width] * row[height])
                    self.brightness.observe(row[brightness])
                    self.contrast.observe(row[contrast])

        return observe
