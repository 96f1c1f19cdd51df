"""POST /explain (api/explain.py): the contract's shape, occlusion that finds the part deciding
the label, and the same refusals as /predict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from bundles import api_bundle_of
from fastapi.testclient import TestClient

from {{ cookiecutter.module_name }}.api.main import (
    create_app,
)
from {{ cookiecutter.module_name }}.params import (
    DataParams,
)


def deciding_frame(rows: int = 200, seed: int = 0) -> tuple[pd.DataFrame, DataParams]:
    """A table whose label one part decides alone, the rest noise."""
    rng = np.random.default_rng(seed)
    # Mostly "no": the baseline (the median, the commonest text) is a "no", so a "yes" owes its
    # label to its deciding part.
    label = rng.choice(["no", "yes"], rows, p=[0.7, 0.3])
{%- if cookiecutter.task == "text" %}
    filler = ["the", "day", "was", "long", "and", "then", "we", "left"]
    word = {"yes": "zebra", "no": "otter"}
    texts = [" ".join([*rng.choice(filler, 4), word[x], *rng.choice(filler, 3)]) for x in label]
    frame = pd.DataFrame({"text": texts, "label": label})
    columns = {"text": "text"}
    return frame, DataParams(source="csv", csv="deciding.csv", target="label", columns=columns)
{%- else %}
    frame = pd.DataFrame(
        {
            "signal": [(3.0 if x == "yes" else -3.0) + rng.normal(0, 0.3) for x in label],
            "noise_a": rng.normal(0, 1, rows),
            "noise_b": rng.normal(0, 1, rows),
            "label": label,
        }
    )
    return frame, DataParams(source="csv", csv="deciding.csv", target="label", columns={})
{%- endif %}


@pytest.fixture(scope="module")
def deciding_bundle(tmp_path_factory):
    return api_bundle_of(tmp_path_factory.mktemp("deciding"), deciding_frame())


@pytest.fixture
def deciding_settings(api_settings, deciding_bundle):
    return api_settings.model_copy(
        update={
            "bundle_dir": deciding_bundle.directory,
            "examples_file": deciding_bundle.examples_file,
        }
    )


def test_explain_answers_the_contract_with_predicts_label(client, api_bundle):
    for index in range(3):
        predicted = client.post("/predict", **api_bundle.single(index)).json()
        response = client.post("/explain", **api_bundle.single(index))
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"label", "method", "contributions"}
        assert body["label"] == predicted["label"]
        assert body["method"] == "occlusion"
        values = [abs(item["value"]) for item in body["contributions"]]
        assert 0 < len(values) <= 20
        assert values == sorted(values, reverse=True)
        names = {item["name"] for item in body["contributions"]}
        if api_bundle.features == api_bundle.texts:  # a text alone: its words, one by one
            [text] = api_bundle.texts
            assert names <= set(api_bundle.records[index][text].split())
        else:  # several columns: each feature, one by one
            assert names <= set(api_bundle.features)


def test_the_part_that_decides_the_label_ranks_first(deciding_settings):
    with TestClient(create_app(deciding_settings)) as client:
{%- if cookiecutter.task == "text" %}
        record, deciding = {"text": "we left the zebra and then the day"}, "zebra"
{%- else %}
        record, deciding = {"signal": 3.0, "noise_a": 0.1, "noise_b": -0.2}, "signal"
{%- endif %}
        body = client.post("/explain", json=record).json()
        assert body["label"] == "yes"
        first = body["contributions"][0]
        assert first["name"] == deciding
        assert first["value"] > 0.2  # the label's probability falls without it


def test_explain_refuses_what_predict_refuses(client, api_bundle):
    (content, content_type), code = api_bundle.refused()
    headers = {"content-type": content_type}
    assert client.post("/explain", content=content, headers=headers).status_code == code
    assert client.post("/explain", content=b"{", headers=headers).status_code == 422
    too_large = json.dumps({"padding": "x" * 70_000}).encode()
    assert client.post("/explain", content=too_large, headers=headers).status_code == 413


def test_explain_is_503_without_a_model(api_settings, api_bundle):
    client = TestClient(create_app(api_settings))  # no `with`: the lifespan has not run
    response = client.post("/explain", **api_bundle.single())
    assert response.status_code == 503
