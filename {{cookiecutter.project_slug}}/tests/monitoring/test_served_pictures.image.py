"""What the service keeps of the pictures an image model answers, as the predictor's observers
see them when the route passes their measures (`Predictor.predict(records, observed=...)`): the
prediction log writes each picture's measures (images.measures), not its pixels, with its label
and probabilities; the metrics record its size, brightness and contrast. The log writer's own
behaviour (ring buffer, a log deleted or replaced, locks, one warning per outage) is the same
for every task: tests/api/test_prediction_log.py.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from {{ cookiecutter.module_name }} import (
    images,
)
from {{ cookiecutter.module_name }}.api.predictor import (
    Predictor,
)
from {{ cookiecutter.module_name }}.inference import (
    load,
)
from {{ cookiecutter.module_name }}.monitoring.metrics import (
    ServiceMetrics,
)
from {{ cookiecutter.module_name }}.monitoring.pictures import (
    MEASURES,
)
from {{ cookiecutter.module_name }}.monitoring.prediction_log import (
    logging_to,
)
from {{ cookiecutter.module_name }}.monitoring.store import (
    LoggedModel,
    PredictionWriter,
    read_recent,
)


class Picture(BaseModel):
    """A record of one picture's pixels (the service's own request model is api/schemas.py's)."""

    image: Any


def pictures_of(monitored, count: int) -> tuple[list, list[Picture], list[dict[str, float]]]:
    """The first `count` pictures of the test split: decoded, as records, and measured."""
    feature = monitored.metadata.image_feature
    paths = [Path(p) for p in monitored.test_split()["image"][:count]]
    decoded = [images.decode(path.read_bytes()) for path in paths]
    records = [Picture(image=images.pixels(picture, feature)) for picture in decoded]
    return decoded, records, [images.measures(picture) for picture in decoded]


def predicted(predictor: Predictor, records: list[Picture], measured: list[dict[str, float]]):
    """The predictor's answers, its observers given the measures as the image route gives them."""
    return asyncio.run(predictor.predict(records, observed=[tuple(m.values()) for m in measured]))


def test_an_image_model_logs_the_measures_of_its_pictures(monitored, tmp_path):
    metadata, model = load(monitored.bundle_dir)
    logged = LoggedModel.of(metadata)
    assert logged.features == MEASURES and logged.numeric_count == len(MEASURES)
    writer = PredictionWriter(tmp_path / "predictions.sqlite", logged)
    writer.start()
    predictor = Predictor(metadata, model, Picture)
    predictor.observers.append(logging_to(writer))
    decoded, records, measured = pictures_of(monitored, 3)
    answers = predicted(predictor, records, measured)
    writer.close()
    kept = read_recent(tmp_path / "predictions.sqlite", 10)
    assert [dict(p.inputs) for p in kept] == measured  # float64 round trip: exact
    assert [p.label for p in kept] == [answer["label"] for answer in answers]
    assert [dict(p.probabilities) for p in kept] == [a["probabilities"] for a in answers]
    assert kept[0].inputs["width"] == decoded[0].width


def test_rows_that_are_not_measures_cost_log_rows_never_answers(monitored, tmp_path, caplog):
    metadata, model = load(monitored.bundle_dir)
    drops: list[tuple[str, int]] = []
    writer = PredictionWriter(
        tmp_path / "predictions.sqlite", LoggedModel.of(metadata),
        on_drop=lambda reason, count: drops.append((reason, count)),
    )  # fmt: skip
    writer.start()
    predictor = Predictor(metadata, model, Picture)
    predictor.observers.append(logging_to(writer))
    caplog.set_level(logging.WARNING)
    # A route that forgot `observed`: the observer sees the pixel rows, which are not measures.
    record = Picture(image=np.zeros(metadata.image_feature.size, dtype=np.float32))
    [answer] = asyncio.run(predictor.predict([record]))
    writer.close()
    assert answer["label"] in metadata.classes
    assert drops == [("error", 1)]
    assert "prediction log" in caplog.text


def test_metrics_record_the_size_brightness_and_contrast_of_each_picture(monitored):
    metadata, model = load(monitored.bundle_dir)
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, pictures=True)
    predictor = Predictor(metadata, model, Picture)
    predictor.observers.append(metrics.pictures.observer())
    _, records, measured = pictures_of(monitored, 4)
    predicted(predictor, records, measured)
    asyncio.run(predictor.predict(records[:1]))  # pixel rows, not measures: left out
    value = registry.get_sample_value
    assert value("model_input_picture_pixels_count") == 4
    assert value("model_input_picture_pixels_sum") == 4 * 8 * 8
    assert value("model_input_picture_brightness_sum") == pytest.approx(
        sum(m["brightness"] for m in measured)
    )
    assert value("model_input_picture_contrast_bucket", {"le": "1.0"}) == 4
    plain = CollectorRegistry()
    ServiceMetrics(plain)  # a model of numbers or texts: no series of pictures
    assert plain.get_sample_value("model_input_picture_pixels_count") is None
