"""The prediction service: every endpoint, every rejection, readiness, and its light footprint."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.module_name }}.api.bundle import (
    BundleError,
    load_bundle,
)
from {{ cookiecutter.module_name }}.api.main import (
    create_app,
)
from {{ cookiecutter.module_name }}.api.predictions import (
    Predictor,
    UnscorableRecordsError,
)
from {{ cookiecutter.module_name }}.config import (
    PROJ_ROOT,
)

# --- happy paths -------------------------------------------------------------------------------


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


def test_predict_agrees_with_scikit_learn(client, api_bundle):
    for record, expected in zip(api_bundle.records, api_bundle.labels, strict=True):
        response = client.post("/predict", json=record)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["label"] == expected
        assert body["model_version"] == api_bundle.model_version
        assert list(body["probabilities"]) == api_bundle.classes
        assert math.isclose(sum(body["probabilities"].values()), 1.0, abs_tol=1e-5)
        assert body["label"] == max(body["probabilities"], key=body["probabilities"].get)


def test_batch_matches_single_predictions_in_order(client, api_bundle):
    records = api_bundle.records[:8]
    response = client.post("/predict/batch", json={"records": records})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == api_bundle.model_version
    singles = [client.post("/predict", json=record).json() for record in records]
    assert [p["label"] for p in body["predictions"]] == api_bundle.labels[:8]
    for batched, single in zip(body["predictions"], singles, strict=True):
        assert batched["label"] == single["label"]
        for label, probability in batched["probabilities"].items():
            assert probability == pytest.approx(single["probabilities"][label], abs=1e-6)


def test_key_order_and_integers_do_not_matter(client, api_bundle):
    record = api_bundle.records[0]
    shuffled = dict(reversed(list(record.items())))
    shuffled[api_bundle.features[0]] = round(record[api_bundle.features[0]])
    rounded = dict(record, **{api_bundle.features[0]: float(round(record[api_bundle.features[0]]))})
    assert (
        client.post("/predict", json=shuffled).json()
        == client.post("/predict", json=rounded).json()
    )


def test_model_describes_the_bundle(client, api_bundle):
    body = client.get("/model").json()
    assert body["registered_model"] == api_bundle.registered_model
    assert body["model_version"] == api_bundle.model_version
    assert body["data_sha256"] == api_bundle.data_sha256
    assert body["classes"] == api_bundle.classes
    assert [feature["name"] for feature in body["features"]] == api_bundle.features
    assert body["metrics"] == {"accuracy": 0.95, "f1": 0.94}
    metadata = json.loads((api_bundle.directory / "metadata.json").read_text())
    assert body["onnx"]["sha256"] == metadata["onnx"]["sha256"]


def test_docs_and_schema_name_every_feature(client, api_bundle):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    record = schema["components"]["schemas"]["Record"]
    assert list(record["properties"]) == api_bundle.features
    assert record["required"] == api_bundle.features
    assert record["additionalProperties"] is False
    batch = schema["components"]["schemas"]["BatchRequest"]["properties"]["records"]
    assert (batch["minItems"], batch["maxItems"]) == (1, 8)


def test_docs_examples_are_rows_of_the_dataset(client, api_bundle):
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    examples = [example["value"] for example in body["examples"].values()]
    assert len(examples) == len(api_bundle.classes)  # one per class
    with api_bundle.examples_file.open() as handle:
        rows = handle.read()
    for example in examples:
        assert list(example) == api_bundle.features
        assert repr(example[api_bundle.features[0]]) in rows
        assert client.post("/predict", json=example).status_code == 200


def test_docs_examples_fall_back_to_the_training_ranges(api_settings, api_bundle):
    settings = api_settings.model_copy(update={"examples_file": None})
    with TestClient(create_app(settings)) as client:
        schema = client.get("/openapi.json").json()
        body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
        [example] = [example["value"] for example in body["examples"].values()]
        assert list(example) == api_bundle.features
        assert client.post("/predict", json=example).status_code == 200


def test_no_cache_header_without_a_cache(client, api_bundle):
    response = client.post("/predict", json=api_bundle.records[0])
    assert "x-cache" not in response.headers


# --- rejections --------------------------------------------------------------------------------

FIRST = "mean_radius"


def with_field(record: dict, name: str, value) -> dict:
    return {**record, name: value}


def without_field(record: dict, name: str) -> dict:
    return {key: value for key, value in record.items() if key != name}


@pytest.mark.parametrize(
    ("change", "field", "error_type"),
    [
        (lambda r: without_field(r, FIRST), FIRST, "missing"),
        (lambda r: with_field(r, "colour", 1.0), "colour", "extra_forbidden"),
        (lambda r: with_field(r, FIRST, "14.2"), FIRST, "float_type"),
        (lambda r: with_field(r, FIRST, True), FIRST, "float_type"),
        (lambda r: with_field(r, FIRST, None), FIRST, "float_type"),
        (lambda r: with_field(r, FIRST, [1.0]), FIRST, "float_type"),
        (lambda r: with_field(r, FIRST, 1e39), FIRST, "less_than_equal"),
        (lambda r: with_field(r, FIRST, -1e39), FIRST, "greater_than_equal"),
    ],
    ids=["missing", "unknown", "string", "boolean", "null", "list", "too-large", "too-small"],
)
def test_invalid_record_is_rejected_naming_the_field(client, api_bundle, change, field, error_type):
    response = client.post("/predict", json=change(api_bundle.records[0]))
    assert response.status_code == 422
    body = response.json()
    assert body["detail"].startswith(f"{field}: ")
    assert body["errors"][0]["field"] == field
    assert body["errors"][0]["type"] == error_type


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_rejected(client, api_bundle, literal):
    # Python's JSON parser accepts these non-standard literals, so the schema must refuse them.
    text = json.dumps(with_field(api_bundle.records[0], FIRST, 0.0)).replace("0.0", literal, 1)
    assert literal in text
    response = client.post("/predict", content=text, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": FIRST,
        "message": "Input should be a finite number",
        "type": "finite_number",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [("{not json", "body"), ("[1, 2]", "body"), ('"text"', "body")],
    ids=["malformed", "list", "string"],
)
def test_body_that_is_not_a_record_is_rejected(client, body, field):
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_batch_rejections_name_the_record_and_field(client, api_bundle):
    records = [api_bundle.records[0], without_field(api_bundle.records[1], FIRST)]
    response = client.post("/predict/batch", json={"records": records})
    assert response.status_code == 422
    assert response.json()["detail"] == f"records[1].{FIRST}: Field required"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"records": []}, "records: List should have at least 1 item"),
        ({"records": None}, "records: Input should be a valid list"),
        ({}, "records: Field required"),
        ({"records": [], "extra": 1}, "records: List should have at least 1 item"),
    ],
    ids=["empty", "null", "missing", "extra-key"],
)
def test_malformed_batches_are_rejected(client, body, detail):
    response = client.post("/predict/batch", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)


def test_oversized_batch_is_rejected(client, api_bundle):
    response = client.post("/predict/batch", json={"records": api_bundle.records[:9]})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("records: List should have at most 8 items")


def test_error_list_is_capped(client):
    response = client.post("/predict/batch", json={"records": [{}] * 8})
    body = response.json()
    assert response.status_code == 422
    assert len(body["errors"]) == 50
    assert body["detail"].endswith(f"(and {8 * 30 - 1} more)")


def test_unscorable_records_are_rejected_not_served_as_nan(api_bundle):
    model = load_bundle(api_bundle.directory)

    class NaNModel:
        metadata = model.metadata

        def predict(self, rows):
            labels, probabilities = model.predict(rows)
            probabilities[-1] = np.nan
            return labels, probabilities

    predictor = Predictor(NaNModel(), [f"f{i}" for i in range(len(api_bundle.features))])
    records = [predictor_record(api_bundle, i) for i in range(3)]
    with pytest.raises(UnscorableRecordsError) as caught:
        import asyncio

        asyncio.run(predictor.predict(records))
    assert caught.value.positions == [2]


def predictor_record(api_bundle, index: int):
    from types import SimpleNamespace

    values = api_bundle.records[index]
    return SimpleNamespace(**{f"f{i}": values[name] for i, name in enumerate(api_bundle.features)})


# --- readiness and broken bundles --------------------------------------------------------------


def test_not_ready_before_startup(api_settings):
    client = TestClient(create_app(api_settings))  # no `with`: the lifespan has not run
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["reason"].startswith("the service is starting")
    assert client.post("/predict", json={}).status_code == 503


def test_missing_bundle_is_not_ready_and_says_why(tmp_path, api_settings, caplog):
    settings = api_settings.model_copy(update={"bundle_dir": tmp_path / "nowhere"})
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        response = client.get("/ready")
        assert response.status_code == 503
        assert "metadata.json does not exist" in response.json()["reason"]
        assert "make pipeline" in response.json()["reason"]
        for method, path in [("post", "/predict"), ("post", "/predict/batch"), ("get", "/model")]:
            answer = client.request(method, path, json={})
            assert answer.status_code == 503
            assert "metadata.json does not exist" in answer.json()["detail"]
    assert any("metadata.json does not exist" in r.getMessage() for r in caplog.records)


def damage_checksum(bundle: Path) -> None:
    model = bundle / "model.onnx"
    model.write_bytes(model.read_bytes()[:-10])


def damage_model(bundle: Path) -> None:
    import hashlib

    garbage = b"not an onnx model"
    (bundle / "model.onnx").write_bytes(garbage)
    edit_metadata(bundle, lambda m: m["onnx"].update(sha256=hashlib.sha256(garbage).hexdigest()))


def edit_metadata(bundle: Path, change) -> None:
    path = bundle / "metadata.json"
    metadata = json.loads(path.read_text())
    change(metadata)
    path.write_text(json.dumps(metadata))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (damage_checksum, "sha256"),
        (damage_model, "ONNX Runtime cannot load"),
        (lambda b: (b / "model.onnx").unlink(), "cannot read the model"),
        (lambda b: (b / "metadata.json").write_text("{truncated"), "not a valid bundle"),
        (lambda b: edit_metadata(b, lambda m: m.pop("classes")), "classes"),
        (lambda b: edit_metadata(b, lambda m: m.update(format_version=99)), "format_version 99"),
        (lambda b: edit_metadata(b, lambda m: m["features"].pop()), "takes 30 features"),
        (
            lambda b: edit_metadata(b, lambda m: m["onnx"].update(input_name="x")),
            "takes inputs ['input']",
        ),
        (
            lambda b: edit_metadata(
                b, lambda m: m.update(classes=["a", "b", "c"], positive_label="a")
            ),
            "classes ['a', 'b', 'c']",
        ),
    ],
    ids=[
        "checksum",
        "not-onnx",
        "no-model",
        "bad-json",
        "no-classes",
        "format",
        "features",
        "input-name",
        "classes",
    ],
)
def test_broken_bundle_is_not_ready_and_says_why(
    tmp_path, api_bundle, api_settings, caplog, damage, reason
):
    bundle = api_bundle.copy_to(tmp_path)
    damage(bundle)
    with pytest.raises(BundleError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        load_bundle(bundle)
    settings = api_settings.model_copy(update={"bundle_dir": bundle})
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        response = client.get("/ready")
        assert response.status_code == 503
        assert reason in response.json()["reason"]
        assert client.post("/predict", json=api_bundle.records[0]).status_code in (422, 503)
    assert any(reason in record.getMessage() for record in caplog.records)


def test_bundle_replaced_between_creation_and_startup_is_not_served(
    tmp_path, api_bundle, api_settings
):
    bundle = api_bundle.copy_to(tmp_path)
    settings = api_settings.model_copy(update={"bundle_dir": bundle})
    app = create_app(settings)
    edit_metadata(bundle, lambda m: m["features"].reverse())
    with TestClient(app) as client:
        assert client.get("/ready").status_code == 503
        assert "restart" in client.get("/ready").json()["reason"]


# --- footprint ---------------------------------------------------------------------------------

PIPELINE_STACK = (
    "pandas",
    "sklearn",
    "mlflow",
    "great_expectations",
{%- if cookiecutter.use_monitoring %}
    "evidently",
{%- endif %}
    "skl2onnx",
)


def test_serving_imports_no_pipeline_library(api_bundle):
    record = api_bundle.records[0]
    code = f"""
import sys
from fastapi.testclient import TestClient
from {{ cookiecutter.module_name }}.api.main import create_app
from {{ cookiecutter.module_name }}.api.settings import Settings
settings = Settings(bundle_dir={str(api_bundle.directory)!r})
with TestClient(create_app(settings)) as client:
    assert client.post("/predict", json={record!r}).status_code == 200
    batch = dict(records=[{record!r}])
    assert client.post("/predict/batch", json=batch).status_code == 200
print(",".join(m for m in {PIPELINE_STACK!r} if m in sys.modules))
"""
    env = {**os.environ, "API_CACHE_URL": ""}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def uv_executable() -> str | None:
    private = PROJ_ROOT / ".tools" / "bin" / "uv"
    return shutil.which("uv") or (str(private) if private.is_file() else None)


@pytest.mark.slow
def test_serve_group_alone_installs_and_serves(tmp_path, api_bundle, free_port):
    """`uv sync --no-default-groups --group serve` is enough to run the service."""
    uv = uv_executable()
    if uv is None:
        pytest.skip("uv is not installed")
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "API_CACHE_URL": ""}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [uv, "sync", "--quiet", "--no-default-groups", "--group", "serve"],
        cwd=PROJ_ROOT,
        env=env,
        check=True,
    )
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [
            python,
            "-c",
            f"import importlib.util as u; print([m for m in {PIPELINE_STACK!r} if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert installed.stdout.strip() == "[]"

    port = free_port()
    server = subprocess.Popen(
        [
            python,
            "-m",
            "uvicorn",
            "--factory",
            "{{ cookiecutter.module_name }}.api.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={**env, "API_BUNDLE_DIR": str(api_bundle.directory)},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(base, server)
        request = urllib.request.Request(
            f"{base}/predict",
            data=json.dumps(api_bundle.records[0]).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["label"] == api_bundle.labels[0]
    finally:
        server.terminate()
        server.wait(timeout=10)


def wait_until_ready(base: str, server: subprocess.Popen, attempts: int = 300) -> None:
    for _ in range(attempts):
        if server.poll() is not None:
            pytest.fail(
                f"the server exited: {server.stdout.read().decode() if server.stdout else ''}"
            )
        try:
            with urllib.request.urlopen(f"{base}/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail("the server did not become ready")
