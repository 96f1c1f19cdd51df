"""The `explain` stage on small real bundles: what it ranks first is what decides the label."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
{%- if cookiecutter.task == "image" %}
from digits_bundle import digits_bundle
{%- endif %}
from small_bundle import small_bundle
from typer.testing import CliRunner

from {{ cookiecutter.module_name }}.card import (
    explanations_block,
)
from {{ cookiecutter.module_name }}.inference import (
    load,
)
from {{ cookiecutter.module_name }}.modeling.explain import (
    app,
    explain,
    kind_of,
)
{%- if cookiecutter.task == "image" %}
from {{ cookiecutter.module_name }}.modeling.splits import (
    image_of,
    kinds_of,
    read_split,
)
{%- endif %}
from {{ cookiecutter.module_name }}.params import (
    DataParams,
    ExplainParams,
    ParamsError,
    load_params,
)

SETTINGS = ExplainParams(samples=30, background=10, seed=0)


def bundle_of(tmp_path, frame: pd.DataFrame, data: DataParams):
    """A small forest's bundle on `frame`, its model, and its test rows in feature order."""
    made = small_bundle(tmp_path, "explained", 1, 20, {"accuracy": 1.0}, data=(frame, data))
    metadata, model = load(made.directory)
    return metadata, model, made.typed(made.test_split)


def refund_frame() -> tuple[pd.DataFrame, DataParams]:
    """Messages whose topic is billing exactly when they hold the word "refund"."""
    rng = np.random.default_rng(0)
    filler = ["the", "order", "came", "today", "please", "check", "my", "account"]
    labels = rng.choice(["billing", "other"], 200)
    texts = [
        " ".join([*rng.choice(filler, 4), *(["refund"] if label == "billing" else [])])
        for label in labels
    ]
    frame = pd.DataFrame({"message": texts, "topic": labels})
    return frame, DataParams(source="csv", target="topic", columns={"message": "text"})


def test_word_occlusion_ranks_the_word_that_decides_the_class(tmp_path):
    frame, data = refund_frame()
    metadata, model, test = bundle_of(tmp_path, frame, data)
    assert kind_of(metadata) == "text"
    document = explain(metadata, model, test, SETTINGS)
    assert document["method"] == "word occlusion"
    assert document["values"]["billing"][0]["name"] == "refund"
    assert document["values"]["billing"][0]["value"] > 0.2
{%- if cookiecutter.task == "tabular" %}


def test_shap_ranks_the_feature_that_alone_decides_the_label(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 4)), columns=["a", "b", "decisive", "c"])
    frame["label"] = np.where(frame["decisive"] > 0, "yes", "no")
    metadata, model, test = bundle_of(tmp_path, frame, DataParams(source="csv", target="label"))
    document = explain(metadata, model, test, SETTINGS)
    names = [item["name"] for item in document["values"]["overall"]]
    assert document["method"] == "shap permutation"
    assert names[0] == "decisive" and sorted(names) == ["a", "b", "c", "decisive"]
    assert document["values"]["overall"][0]["value"] > 5 * document["values"]["overall"][1]["value"]


def test_shap_explains_category_and_text_columns_too(tmp_path):
    from tables import mixed_frame

    metadata, model, test = bundle_of(tmp_path, *mixed_frame())
    document = explain(metadata, model, test, SETTINGS)
    names = [item["name"] for item in document["values"]["overall"]]
    assert document["kind"] == "table" and len(names) == 4
    assert names[0] in ("reading", "site", "note")  # the columns that carry the label
    assert names[-1] == "count"  # random numbers: no effect
{%- endif %}
{%- if cookiecutter.task == "image" %}


def test_pixel_occlusion_finds_the_strokes_not_the_empty_border(tmp_path):
    made = digits_bundle(tmp_path, "digit")
    metadata, model = load(made.directory)
    features = metadata.features
    test, _ = read_split(made.test_file, made.target, kinds_of(features), image_of(features))
    document = explain(metadata, model, test, SETTINGS)
    assert document["kind"] == "image" and document["method"] == "pixel occlusion"
    for heat in document["values"].values():
        heat = np.asarray(heat)
        assert heat.shape == (8, 8)
        # The digits' first column is blank: blanking it changes nothing.
        assert np.abs(heat[:, 0]).max() == 0
        assert heat[2:6, 2:6].max() > 0  # the strokes matter
    assert all(not name.endswith("column 0") for top in document["top"].values() for name in top)
{%- endif %}


def test_card_summarises_the_explanations_of_its_own_model_only(tmp_path):
    metadata, model, test = bundle_of(tmp_path, *refund_frame())
    document = {"run_id": metadata.identity.run_id, **explain(metadata, model, test, SETTINGS)}
    assert document["top"]["billing"][0] == "refund"
    assert len(document["top"]["billing"]) == 5
    block = explanations_block(json.loads(json.dumps(document)), metadata)
    assert "| `billing` | refund, " in block and "30 sampled rows" in block
    other = explanations_block({**document, "run_id": "another-run"}, metadata)
    assert other.startswith("Not recorded here") and metadata.identity.run_id in other


def test_stage_writes_the_json_and_figure(tmp_path):
    frame, data = refund_frame()
    made = small_bundle(tmp_path, "explained", 1, 20, {"accuracy": 1.0}, data=(frame, data))
    test_file, params_file = tmp_path / "test.csv", tmp_path / "params.yaml"
    made.test_split.to_csv(test_file, index=False)
    document = made.params.model_dump(mode="json")
    document["explain"] = {"samples": 20, "background": 5, "seed": 0}
    params_file.write_text(yaml.safe_dump(document), encoding="utf-8")
    out = tmp_path / "explanations"
    arguments = ["--bundle-dir", str(made.directory), "--test-path", str(test_file)]
    arguments += ["--params-file", str(params_file), "--output-dir", str(out), "--no-log"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    written = json.loads((out / "explanations.json").read_text(encoding="utf-8"))
    assert written["run_id"] == "test-run" and written["samples"] == 20
    assert written["top"]["billing"][0] == "refund"
    assert (out / "explanations.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"samples": 0, "background": 5, "seed": 0}, "explain.samples"),
        ({"samples": 5, "background": "many", "seed": 0}, "explain.background"),
        ({"samples": 5, "background": 5}, "explain.seed"),
    ],
)
def test_bad_explain_settings_are_one_line_errors(tmp_path, settings, message):
    document = load_params().model_dump(mode="json")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({**document, "explain": settings}), encoding="utf-8")
    with pytest.raises(ParamsError) as error:
        load_params(path)
    assert message in str(error.value) and "\n" not in str(error.value)
