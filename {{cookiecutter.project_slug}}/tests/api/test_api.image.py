"""The prediction service of an image model, through a test client: uploaded pictures are
answered as the pipeline's model reads them (refusals: test_api_validation.py)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from {{ cookiecutter.module_name }} import (
    images,
)
from {{ cookiecutter.module_name }}.api.main import (
    create_app,
)
from {{ cookiecutter.module_name }}.inference import (
    load,
)


def encoded(picture: Image.Image, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=kind)
    return buffer.getvalue()


def refused(response, status: int, *words: str) -> str:
    """The one-line reason of a refusal with `status`, which names each of `words`."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert "\n" not in detail and all(word in detail for word in words), detail
    return detail


def test_a_picture_is_answered_as_the_pipeline_reads_it(client, api_bundle):
    for index in range(5):
        response = client.post("/predict", files={"image": api_bundle.upload(index)})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["label"] == api_bundle.labels[index]
        assert answer["model_version"] == api_bundle.model_version
        assert sorted(answer["probabilities"]) == sorted(api_bundle.classes)
        assert sum(answer["probabilities"].values()) == pytest.approx(1, abs=1e-5)


def test_a_picture_of_another_size_and_mode_is_resized_and_converted(client, api_bundle):
    """A colour JPEG four times larger: the model reads it as images.pixels gives it."""
    original = images.decode(api_bundle.pictures[0].read_bytes())
    larger = original.convert("RGB").resize((32, 32))
    data = encoded(larger, "JPEG")
    metadata, model = load(api_bundle.directory)
    pixels = images.pixels(images.decode(data), metadata.image_feature)
    [label], probabilities = model.predict([(pixels,)])
    response = client.post("/predict", files={"image": ("big.jpg", data, "image/jpeg")})
    assert response.status_code == 200, response.text
    assert response.json()["label"] == label
    got = [response.json()["probabilities"][name] for name in metadata.classes]
    assert np.allclose(got, probabilities[0], atol=1e-6)


def test_the_declared_media_type_is_not_trusted(client, api_bundle):
    name, data, _ = api_bundle.upload(1)
    response = client.post("/predict", files={"image": (name, data, "application/octet-stream")})
    assert response.status_code == 200 and response.json()["label"] == api_bundle.labels[1]
    response = client.post("/predict", files={"image": ("a.png", b"plain text", "image/png")})
    refused(response, 415, "image (a.png)", "not a PNG or JPEG")


def test_a_batch_is_answered_in_order_with_one_model_call(client, api_bundle):
    files = [("images", api_bundle.upload(index)) for index in range(6)]
    response = client.post("/predict/batch", files=files)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model_version"] == api_bundle.model_version
    assert [p["label"] for p in answer["predictions"]] == api_bundle.labels[:6]


def test_model_and_ready_describe_the_image_model(client, api_bundle):
    ready = client.get("/ready").json()
    assert (ready["status"], ready["model_version"]) == ("ready", api_bundle.model_version)
    [feature] = client.get("/model").json()["features"]
    assert feature == {"kind": "image", "name": "image", "width": 8, "height": 8, "mode": "L"}


def test_without_a_model_the_routes_say_why(api_settings, api_bundle, tmp_path):
    settings = api_settings.model_copy(update={"bundle_dir": tmp_path / "missing"})
    with TestClient(create_app(settings)) as no_model:
        assert no_model.get("/health").status_code == 200
        not_ready = no_model.get("/ready")
        assert not_ready.status_code == 503 and "missing" in not_ready.json()["reason"]
        refused(no_model.post("/predict", files={"image": api_bundle.upload(0)}), 503, "no model")
        files = [("images", api_bundle.upload(0))]
        refused(no_model.post("/predict/batch", files=files), 503, "no model")


def test_the_schema_declares_the_uploads_and_their_answers(client):
    paths = client.get("/openapi.json").json()["paths"]
    single = paths["/predict"]["post"]
    form = single["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["$ref"].endswith("Body_predict_predict_post")
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    picture = schemas["Body_predict_predict_post"]["properties"]["image"]
    assert picture.get("format") == "binary" or picture.get("contentMediaType")
    batch = schemas["Body_predict_batch_predict_batch_post"]["properties"]["images"]
    assert batch["type"] == "array"
    for route in (single, paths["/predict/batch"]["post"]):
        assert {"200", "413", "415", "422", "503"} <= set(route["responses"])
    answer = single["responses"]["200"]["content"]["application/json"]["schema"]
    assert json.dumps(answer).endswith('PredictionResponse"}')
