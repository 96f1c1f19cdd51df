"""What the service refuses: 422 for each kind of invalid record or batch, naming the field (with
the accepted range for a value outside it), and 413 for a body too large to be read."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.module_name }}.api.main import (
    create_app,
)
from {{ cookiecutter.module_name }}.api.schemas import (
    CATEGORY_MAX_CHARS,
)


def expected_range(api_bundle, name: str, margin: float) -> tuple[float, float]:
    """The training range widened by `margin` of its width, never below 0 if it was not."""
    low, high = api_bundle.ranges[name]
    spread = margin * (high - low)
    return (max(low - spread, 0.0) if low >= 0 else low - spread), high + spread


def record_schema(client) -> dict:
    return client.get("/openapi.json").json()["components"]["schemas"]["Record"]


# --- the schema --------------------------------------------------------------------------------


def test_schema_names_every_feature_with_its_accepted_range(client, api_bundle):
    schema = record_schema(client)
    assert list(schema["properties"]) == api_bundle.features
    assert schema["required"] == api_bundle.features
    assert schema["additionalProperties"] is False
    for name in api_bundle.ranges:
        field = schema["properties"][name]
        low, high = expected_range(api_bundle, name, margin=0.1)
        # Widened, then rounded outwards to 4 significant digits (1e-9: float arithmetic).
        assert low - 1e-3 * abs(low) <= field["minimum"] <= low + 1e-9 * abs(low)
        assert high - 1e-9 * abs(high) <= field["maximum"] <= high + 1e-3 * abs(high)
        if api_bundle.ranges[name][0] >= 0:
            assert field["minimum"] >= 0


def test_batch_size_limits_are_in_the_schema(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["BatchRequest"]
    records = schema["properties"]["records"]
    assert (records["minItems"], records["maxItems"]) == (1, 8)


# --- out of range ------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["above", "below"])
def test_value_out_of_range_is_rejected_naming_field_and_range(client, api_bundle, side):
    name = api_bundle.numeric[0]
    allowed = record_schema(client)["properties"][name]
    low, high = allowed["minimum"], allowed["maximum"]
    value = high + (high - low) if side == "above" else low - (high - low) - 1
    response = client.post("/predict", json={**api_bundle.records[0], name: value})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == name
    assert error["type"] == "out_of_range"
    assert error["allowed"] == {"minimum": low, "maximum": high}
    assert f"{low:g}" in error["message"]
    assert f"{high:g}" in error["message"]
    assert response.json()["detail"].startswith(f"{name}: ")


def test_bounds_themselves_are_accepted(client, api_bundle):
    properties = record_schema(client)["properties"]
    record = api_bundle.records[0]
    lowest = {**record, **{name: properties[name]["minimum"] for name in api_bundle.ranges}}
    highest = {**record, **{name: properties[name]["maximum"] for name in api_bundle.ranges}}
    for record in (lowest, highest):
        assert client.post("/predict", json=record).status_code == 200


def test_negative_value_of_a_never_negative_feature_is_rejected(client, api_bundle):
    name = next((name for name, (low, _) in api_bundle.ranges.items() if low >= 0), None)
    if name is None:
        pytest.skip("no numeric feature of this data is never negative")
    response = client.post("/predict", json={**api_bundle.records[0], name: -1e-6})
    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "out_of_range"


def test_out_of_range_in_a_batch_names_the_record(client, api_bundle):
    name = api_bundle.numeric[-1]
    bad = {**api_bundle.records[1], name: 1e30}
    response = client.post("/predict/batch", json={"records": [api_bundle.records[0], bad]})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["field"], error["type"]) == (f"records[1].{name}", "out_of_range")


def test_the_margin_is_a_setting(api_settings, api_bundle):
    name = api_bundle.numeric[0]
    low, high = api_bundle.ranges[name]
    record = {**api_bundle.records[0], name: high + 0.05 * (high - low)}
    for margin, status in ((0.0, 422), (0.1, 200)):
        settings = api_settings.model_copy(update={"range_margin": margin})
        with TestClient(create_app(settings)) as client:
            assert client.post("/predict", json=record).status_code == status


# --- category and text features (a made-up table that has them, whatever the project's data) ---


@pytest.fixture
def mixed_client(mixed_settings):
    with TestClient(create_app(mixed_settings)) as client:
        yield client


def test_category_and_text_fields_are_strings_with_limits(mixed_client, mixed_bundle):
    properties = record_schema(mixed_client)["properties"]
    assert properties["site"]["type"] == "string"
    assert properties["site"]["maxLength"] == CATEGORY_MAX_CHARS
    assert "site-0, site-1, site-2, site-3" in properties["site"]["description"]
    assert (properties["note"]["type"], properties["note"]["maxLength"]) == ("string", 5000)
    assert properties["reading"]["type"] == "number"


def test_a_mixed_record_gets_every_class_and_an_unseen_category_is_ignored(
    mixed_client, mixed_bundle
):
    record = mixed_bundle.records[0]
    answer = mixed_client.post("/predict", json=record)
    assert answer.status_code == 200, answer.text
    assert list(answer.json()["probabilities"]) == mixed_bundle.classes == ["high", "low", "mid"]
    assert answer.json()["label"] == mixed_bundle.labels[0]
    unseen = mixed_client.post("/predict", json={**record, "site": "a new site"})
    assert unseen.status_code == 200


@pytest.mark.parametrize(
    ("field", "value", "error_type"),
    [
        ("site", 3, "string_type"),  # a number is not a category
        ("site", "x" * (CATEGORY_MAX_CHARS + 1), "string_too_long"),
        ("note", "x" * 5001, "string_too_long"),
        ("note", None, "string_type"),
    ],
)
def test_bad_category_or_text_values_are_422(mixed_client, mixed_bundle, field, value, error_type):
    response = mixed_client.post("/predict", json={**mixed_bundle.records[0], field: value})
    assert response.status_code == 422
    assert (response.json()["errors"][0]["field"], response.json()["errors"][0]["type"]) == (
        field,
        error_type,
    )


def test_strict_categories_refuse_an_unseen_value(mixed_settings, mixed_bundle):
    settings = mixed_settings.model_copy(update={"strict_categories": True, "max_text_chars": 20})
    with TestClient(create_app(settings)) as client:
        record = mixed_bundle.records[0]
        assert client.post("/predict", json={**record, "note": "short"}).status_code == 200
        unseen = client.post("/predict", json={**record, "note": "short", "site": "a new site"})
        assert unseen.status_code == 422
        assert unseen.json()["errors"][0]["type"] == "literal_error"
        assert client.post("/predict", json={**record, "note": "x" * 21}).status_code == 422


# --- other invalid records ---------------------------------------------------------------------


def with_field(record: dict, name: str, value) -> dict:
    return {**record, name: value}


def without_field(record: dict, name: str) -> dict:
    return {key: value for key, value in record.items() if key != name}


INVALID_RECORDS = {
    "missing": (lambda r, f: without_field(r, f), "missing"),
    "unknown": (lambda r, f: with_field(r, "colour", 1.0), "extra_forbidden"),
    "string": (lambda r, f: with_field(r, f, "14.2"), "float_type"),
    "boolean": (lambda r, f: with_field(r, f, True), "float_type"),
    "null": (lambda r, f: with_field(r, f, None), "float_type"),
    "list": (lambda r, f: with_field(r, f, [1.0]), "float_type"),
}


@pytest.mark.parametrize(("change", "error_type"), INVALID_RECORDS.values(), ids=INVALID_RECORDS)
def test_invalid_record_is_rejected_naming_the_field(client, api_bundle, change, error_type):
    name = api_bundle.numeric[0]
    response = client.post("/predict", json=change(api_bundle.records[0], name))
    assert response.status_code == 422
    body = response.json()
    field = "colour" if error_type == "extra_forbidden" else name
    assert body["detail"].startswith(f"{field}: ")
    assert (body["errors"][0]["field"], body["errors"][0]["type"]) == (field, error_type)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_rejected(client, api_bundle, literal):
    # Python's JSON parser accepts these non-standard literals, so the schema must refuse them.
    name = api_bundle.numeric[0]
    text = json.dumps({**api_bundle.records[0], name: "HERE"}).replace('"HERE"', literal)
    response = client.post("/predict", content=text, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": name,
        "message": "Input should be a finite number",
        "type": "finite_number",
    }


@pytest.mark.parametrize(
    ("body", "error_type"),
    [("{not json", "json_invalid"), ("[1, 2]", "model_attributes_type"), ("", "missing")],
    ids=["malformed", "list", "empty"],
)
def test_body_that_is_not_a_record_is_rejected(client, body, error_type):
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"
    assert response.json()["errors"][0]["type"] == error_type


def test_body_that_is_not_utf8_is_refused(client):
    headers = {"content-type": "application/json"}
    response = client.post("/predict", content=b"\xff\xfe{", headers=headers)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"records": []}, "records: List should have at least 1 item"),
        ({"records": None}, "records: Input should be a valid list"),
        ({}, "records: Field required"),
        ({"records": [{}], "extra": 1}, "records[0]."),
    ],
    ids=["empty", "null", "missing", "extra-key"],
)
def test_malformed_batches_are_rejected(client, body, detail):
    response = client.post("/predict/batch", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)


def test_batch_rejections_name_the_record_and_field(client, api_bundle):
    name = api_bundle.numeric[0]
    records = [api_bundle.records[0], without_field(api_bundle.records[1], name)]
    response = client.post("/predict/batch", json={"records": records})
    assert response.status_code == 422
    assert response.json()["detail"] == f"records[1].{name}: Field required"


def test_oversized_batch_is_rejected(client, api_bundle):
    response = client.post("/predict/batch", json={"records": api_bundle.records[:9]})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("records: List should have at most 8 items")


def test_error_list_is_capped(client, api_bundle):
    response = client.post("/predict/batch", json={"records": [{}] * 8})
    body = response.json()
    assert response.status_code == 422
    errors = 8 * len(api_bundle.features)  # every field of every record is missing
    assert len(body["errors"]) == min(errors, 50)
    assert body["detail"].endswith(f"(and {errors - 1} more)")


# --- bodies too large --------------------------------------------------------------------------


def test_body_over_the_limit_is_refused_before_parsing(client):
    # Not JSON at all: a 422 would mean it was parsed.
    response = client.post(
        "/predict", content=b"x" * (64 * 1024 + 1), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_chunked_body_over_the_limit_is_refused(client):
    def chunks():
        for _ in range(80):
            yield b"x" * 1024

    response = client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_body_under_the_limit_is_parsed(client):
    response = client.post(
        "/predict", content=b" " * (60 * 1024) + b"{}", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
