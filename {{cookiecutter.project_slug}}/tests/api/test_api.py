"""The prediction service: its endpoints, readiness with a broken bundle, offline docs.

Rejections (422, 413) are in test_api_validation.py, a real uvicorn in test_api_server.py, the
footprint in test_api_footprint.py.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.module_name }}.api.main import (
    create_app,
)
from {{ cookiecutter.module_name }}.bundle import (
    BundleError,
)
from {{ cookiecutter.module_name }}.inference import (
    load,
)

# --- the endpoints -----------------------------------------------------------------------------


def test_health(client):
    assert client.get("/health").json() == {"status": "ok"}


def test_ready_after_startup(client, api_bundle):
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "model_version": api_bundle.model_version,
        "reason": None,
    }


def test_model_is_the_served_bundle_metadata(client, api_bundle):
    body = client.get("/model").json()
    assert body == json.loads((api_bundle.directory / "metadata.json").read_text())
    assert body["identity"]["version"] == api_bundle.model_version
    assert [feature["name"] for feature in body["features"]] == api_bundle.features


def test_predict_agrees_with_scikit_learn(client, api_bundle):
    for record, expected in zip(api_bundle.records, api_bundle.labels, strict=True):
        response = client.post("/predict", json=record)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["label"] == expected
        assert body["model_version"] == api_bundle.model_version
        assert list(body["probabilities"]) == api_bundle.classes
        assert math.isclose(sum(body["probabilities"].values()), 1.0, abs_tol=1e-5)


def test_batch_matches_single_predictions_in_order(client, api_bundle):
    records = api_bundle.records[:8]
    response = client.post("/predict/batch", json={"records": records})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == api_bundle.model_version
    singles = [client.post("/predict", json=record).json() for record in records]
    assert [prediction["label"] for prediction in body["predictions"]] == api_bundle.labels[:8]
    for batched, single in zip(body["predictions"], singles, strict=True):
        assert batched["probabilities"] == pytest.approx(single["probabilities"], abs=1e-6)


def test_key_order_and_integers_do_not_matter(client, api_bundle):
    # A feature whose training range holds a whole number, sent as 28 and as 28.0.
    wholes = [
        (name, math.floor(high))
        for name, (low, high) in api_bundle.ranges.items()
        if math.floor(high) >= low
    ]
    if not wholes:
        pytest.skip("the model has no numeric feature whose range holds a whole number")
    name, whole = wholes[0]
    record = dict(api_bundle.records[0], **{name: float(whole)})
    shuffled = dict(reversed(list(record.items())), **{name: whole})
    assert (
        client.post("/predict", json=shuffled).json() == client.post("/predict", json=record).json()
    )


# --- documentation -----------------------------------------------------------------------------


def request_examples(client, path: str) -> list[dict]:
    operation = client.get("/openapi.json").json()["paths"][path]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    return [example["value"] for example in examples.values()]


def test_docs_examples_are_rows_of_the_test_split(client, api_bundle):
    examples = request_examples(client, "/predict")
    assert len(examples) == len(api_bundle.classes)  # one per class
    with api_bundle.examples_file.open(encoding="utf-8", newline="") as handle:
        rows = [
            {f: float(row[f]) if f in api_bundle.ranges else row[f] for f in api_bundle.features}
            for row in csv.DictReader(handle)
        ]
    for example in examples:
        assert list(example) == api_bundle.features
        assert example in rows
        assert client.post("/predict", json=example).status_code == 200
    [batch] = request_examples(client, "/predict/batch")
    assert client.post("/predict/batch", json=batch).status_code == 200


def test_docs_examples_fall_back_to_the_middle_of_the_ranges(api_settings, api_bundle):
    settings = api_settings.model_copy(update={"examples_file": None})
    with TestClient(create_app(settings)) as client:
        [example] = request_examples(client, "/predict")
        name = api_bundle.numeric[0]
        low, high = api_bundle.ranges[name]
        assert example[name] == pytest.approx((low + high) / 2)
        assert client.post("/predict", json=example).status_code == 200


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_work_offline(client, page):
    html = client.get(page)
    assert html.status_code == 200
    assert not re.findall(r"https?://", html.text), "the page loads something from the network"
    assets = re.findall(r"""(?:src|href)=["']?(/[^"' >]+)""", html.text)
    assert any(asset.endswith(".js") for asset in assets)
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100, asset


# --- readiness with a missing or broken bundle -------------------------------------------------


def test_not_ready_before_startup(api_settings, api_bundle):
    client = TestClient(create_app(api_settings))  # no `with`: the lifespan has not run
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["reason"].startswith("the service is starting")
    assert client.post("/predict", json=api_bundle.records[0]).status_code == 503


def test_missing_bundle_is_not_ready_and_says_why(tmp_path, api_settings, caplog):
    settings = api_settings.model_copy(update={"bundle_dir": tmp_path / "nowhere"})
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        response = client.get("/ready")
        assert response.status_code == 503
        assert "there is no bundle" in response.json()["reason"]
        for method, path in [("post", "/predict"), ("post", "/predict/batch"), ("get", "/model")]:
            answer = client.request(method, path, json={})
            assert answer.status_code == 503
            assert "there is no bundle" in answer.json()["detail"]
    assert any("there is no bundle" in record.getMessage() for record in caplog.records)


def damage_checksum(bundle: Path) -> None:
    model = bundle / "model.onnx"
    model.write_bytes(model.read_bytes()[:-10])


def damage_model(bundle: Path) -> None:
    garbage = b"not an onnx model"
    (bundle / "model.onnx").write_bytes(garbage)
    sha256 = hashlib.sha256(garbage).hexdigest()
    edit_metadata(bundle, lambda m: m["identity"].update(sha256=sha256))


def edit_metadata(bundle: Path, change) -> None:
    path = bundle / "metadata.json"
    metadata = json.loads(path.read_text())
    change(metadata)
    path.write_text(json.dumps(metadata))


def other_kind_last(metadata: dict) -> None:
    """The last feature said to be of another kind than the model takes it as (in kind order)."""
    last = metadata["features"].pop()
    if last["kind"] == "numeric":
        metadata["features"].append({"kind": "text", "name": last["name"], "max_length": 10})
    else:
        numeric = {"kind": "numeric", "name": last["name"], "min": 0, "max": 1}
        metadata["features"].insert(0, numeric)


def one_feature_more(metadata: dict) -> None:
    """A feature the model does not take: a copy of the first one, under another name."""
    first = metadata["features"][0]
    metadata["features"].insert(1, {**first, "name": first["name"] + "_more"})


DAMAGES = {
    "checksum": (damage_checksum, "sha256"),
    "not-onnx": (damage_model, "ONNX Runtime cannot load"),
    "no-model": (lambda b: (b / "model.onnx").unlink(), "cannot read"),
    "bad-json": (lambda b: (b / "metadata.json").write_text("{truncated"), "cannot read"),
    "no-classes": (lambda b: edit_metadata(b, lambda m: m.pop("classes")), "classes"),
    "format": (
        lambda b: edit_metadata(b, lambda m: m.update(format_version=99)),
        "format_version 99",
    ),
    "features": (lambda b: edit_metadata(b, one_feature_more), "the metadata"),
    "kinds": (lambda b: edit_metadata(b, other_kind_last), "takes"),
    "classes": (
        lambda b: edit_metadata(b, lambda m: m.update(classes=["a", "b", "c"], positive_label="a")),
        "do not match the classes",
    ),
}


@pytest.mark.parametrize(("damage", "reason"), DAMAGES.values(), ids=DAMAGES.keys())
def test_broken_bundle_is_not_ready_and_says_why(
    tmp_path, api_bundle, api_settings, caplog, damage, reason
):
    bundle = api_bundle.copy_to(tmp_path)
    damage(bundle)
    with pytest.raises(BundleError, match=re.escape(reason)):
        load(bundle)
    settings = api_settings.model_copy(update={"bundle_dir": bundle})
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        response = client.get("/ready")
        assert response.status_code == 503
        assert reason in response.json()["reason"]
        batch = {"records": [api_bundle.records[0]]}
        assert client.post("/predict/batch", json=batch).status_code == 503
        # /predict validates the record before it checks for the model (see routes.py): a
        # record that fits the metadata's features gets the 503.
        record = fitting_record(bundle, api_bundle.records[0])
        assert client.post("/predict", json=record).status_code == 503
    assert any(reason in record.getMessage() for record in caplog.records)


def fitting_record(bundle: Path, record: dict) -> dict:
    """`record`, made to fit the features that metadata.json lists (by name and kind); empty when
    it cannot be read."""
    try:
        features = json.loads((bundle / "metadata.json").read_text()).get("features", [])
    except ValueError:
        return {}
    fitted = {}
    for feature in features:
        value = record.get(feature["name"])
        if feature["kind"] != "numeric":
            fitted[feature["name"]] = str(value)
        elif isinstance(value, float):
            fitted[feature["name"]] = value
        else:
            fitted[feature["name"]] = (feature["min"] + feature["max"]) / 2
    return fitted


def test_bundle_replaced_between_creation_and_startup_is_not_served(
    tmp_path, api_bundle, api_settings
):
    bundle = api_bundle.copy_to(tmp_path)
    app = create_app(api_settings.model_copy(update={"bundle_dir": bundle}))
    edit_metadata(bundle, lambda m: m["identity"].update(version=99))
    with TestClient(app) as client:
        response = client.get("/ready")
        assert response.status_code == 503
        assert "restart" in response.json()["reason"]
