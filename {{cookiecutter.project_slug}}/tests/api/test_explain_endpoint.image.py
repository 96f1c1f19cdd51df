"""POST /explain of an image model (api/explain.py): the contract's shape, the label /predict
gives, and the same refusals as /predict."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from {{ cookiecutter.module_name }}.api.main import (
    create_app,
)

SQUARE = re.compile(r"^rows (\d+)-(\d+), columns (\d+)-(\d+)$")


def test_explain_answers_the_contract_with_predicts_label(client, api_bundle):
    for index in range(3):
        upload = {"files": {"image": api_bundle.upload(index)}}
        predicted = client.post("/predict", **upload).json()
        response = client.post("/explain", **upload)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["label"] == predicted["label"]
        assert body["method"] == "occlusion"
        values = [abs(item["value"]) for item in body["contributions"]]
        assert 0 < len(values) <= 20
        assert values == sorted(values, reverse=True)
        for item in body["contributions"]:
            top, bottom, left, right = map(int, SQUARE.match(item["name"]).groups())
            assert top % 7 == 0 and left % 7 == 0 and bottom - top < 7 and right - left < 7


def test_explain_refuses_what_predict_refuses(client, api_bundle):
    text = {"image": ("notes.txt", b"not a picture at all", "text/plain")}
    assert client.post("/explain", files=text).status_code == 415
    assert client.post("/explain", files={"other": api_bundle.upload()}).status_code == 422
    large = {"image": ("big.png", b"\x89PNG" + b"0" * 9000, "image/png")}
    assert client.post("/explain", files=large).status_code == 413


def test_explain_is_503_without_a_model(api_settings, api_bundle):
    client = TestClient(create_app(api_settings))  # no `with`: the lifespan has not run
    assert client.post("/explain", files={"image": api_bundle.upload()}).status_code == 503
