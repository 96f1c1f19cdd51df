"""Stage `card`: the measured parts of the cards are filled, every word the team wrote stays, and
the cards parse offline with huggingface_hub (never `validate()`, which calls the Hub)."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData
from typer.testing import CliRunner

from {{ cookiecutter.module_name }}.bundle import (
    BundleMetadata,
    CategoryFeature,
    ModelIdentity,
    NumericFeature,
    OnnxSignature,
    Parity,
    TextFeature,
    write,
)
from {{ cookiecutter.module_name }}.card import (
    app,
    fill_dataset_card,
    marker,
    read_block,
)
from {{ cookiecutter.module_name }}.config import (
    DATASET_CARD,
    MODEL_CARD,
    PARAMS_FILE,
)
from {{ cookiecutter.module_name }}.params import (
    DataParams,
)

MODEL = b"pretend this is ONNX"
METRICS = {"accuracy": 0.96491, "f1_macro": 0.95, "roc_auc": 0.99404}
KG_CO2 = 0.0025  # what CodeCarbon writes: kilograms


def identity(version: int, run_id: str) -> ModelIdentity:
    digest = hashlib.sha256(MODEL).hexdigest()
    return ModelIdentity(registered_model="demo", version=version, run_id=run_id, sha256=digest)


def champion(folder: Path, version: int = 1, run_id: str = "a" * 32) -> ModelIdentity:
    metadata = BundleMetadata(
        created_at="2026-01-01T00:00:00+00:00",
        identity=identity(version, run_id),
        data_sha256="d" * 64,
        target="label",
        positive_label="yes",
        classes=["no", "yes"],
        features=[
            NumericFeature(name="x", min=0.0, max=1.0),
            NumericFeature(name="y", min=-1.0, max=1.0),
            CategoryFeature(name="site", categories=["a", "b"]),
            TextFeature(name="note", max_length=80),
        ],
        onnx=OnnxSignature(label_output="label", probabilities_output="p", opset={"": 17}),
        metrics=METRICS,
        parity=Parity(rows=10, max_probability_difference=1e-7, tolerance=1e-5),
        libraries={},
    )
    write(folder, MODEL, metadata)
    return metadata.identity


@pytest.fixture
def stage(tmp_path):
    """The stage's inputs in tmp_path, this project's cards copied; returns a runner of it."""
    root = tmp_path
    shutil.copy(MODEL_CARD, root / "model-card.md")
    shutil.copy(DATASET_CARD, root / "dataset-card.md")
    shutil.copy(PARAMS_FILE, root / "params.yaml")
    served = champion(root / "bundle")
    (root / "promotion.json").write_text(json.dumps({"candidate": served.model_dump()}))
    row = {"emissions": KG_CO2, "energy_consumed": 0.01, "duration": 36.0}
    row |= {"country_name": "France", "cpu_count": 2, "cpu_model": "Test CPU"}
    with (root / "emissions.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    dataset = {"source": "builtin", "sha256": "d" * 64, "rows": 569, "columns": ["x", "y"]}
    (root / "dataset.json").write_text(json.dumps(dataset))
    top = {"no": ["x", "site"], "yes": ["y", "note"]}  # the explain stage's, for this model
    explained = {"run_id": served.run_id, "method": "occlusion", "samples": 10, "top": top}
    (root / "explanations.json").write_text(json.dumps(explained))

    def run(expect: int = 0) -> str:
        arguments = ["--model-card", "model-card.md", "--dataset-card", "dataset-card.md"]
        arguments += ["--bundle-dir", "bundle", "--promotion-file", "promotion.json"]
        arguments += ["--emissions-file", "emissions.csv", "--metadata-path", "dataset.json"]
        arguments += ["--params-file", "params.yaml", "--explanations-file", "explanations.json"]
        arguments = [str(root / a) if not a.startswith("--") else a for a in arguments]
        result = CliRunner().invoke(app, arguments)
        assert result.exit_code == expect, result.output
        return result.output

    run.root = root
    return run


def test_this_projects_cards_parse_offline_and_their_metadata_round_trips():
    for path, card_type, data_type in (
        (MODEL_CARD, ModelCard, ModelCardData),
        (DATASET_CARD, DatasetCard, DatasetCardData),
    ):
        card = card_type(path.read_text(encoding="utf-8"))
        data = card.data.to_dict()
        assert data, f"{path.name} has no metadata"
        assert data_type(**data).to_dict() == data
        assert card_type(card.content).data.to_dict() == data


def test_the_stage_fills_metrics_emissions_parameters_and_data(stage):
    assert "describes demo version 1" in stage()
    card = ModelCard((stage.root / "model-card.md").read_text())
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results == {name: round(value, 4) for name, value in METRICS.items()}
    assert {r.dataset_split for r in card.data.eval_results} == {"test"}
    assert card.data.model_name == "demo"
    assert card.data.co2_eq_emissions["emissions"] == pytest.approx(KG_CO2 * 1000)  # grams
    assert "a" * 32 in read_block(card.text, "identity")
    assert "| Classes | 2: no, yes (positive: yes) |" in read_block(card.text, "identity")
    assert "| Inputs | 4 features: 2 numeric, 1 category, 1 text |" in read_block(
        card.text, "identity"
    )
    block = read_block(card.text, "explanations")
    assert "| predicted class (or overall) | most important first |" in block
    assert "| `yes` | y, note |" in block
    assert "`n_estimators`" in read_block(card.text, "parameters")
    assert "569 rows" in read_block(card.text, "training-data")
    data = DatasetCard((stage.root / "dataset-card.md").read_text())
    assert data.data.size_categories == "n<1K"
    assert "`" + "d" * 64 + "`" in read_block(data.text, "summary")


def test_both_cards_name_one_task_and_the_model_index_uses_it(stage):
    model = ModelCard(MODEL_CARD.read_text(encoding="utf-8")).data
    dataset = DatasetCard(DATASET_CARD.read_text(encoding="utf-8")).data
    assert model.pipeline_tag in dataset.task_categories
    path = stage.root / "model-card.md"  # a team changes its task in the card's front matter
    path.write_text(path.read_text().replace(model.pipeline_tag, "image-classification"))
    stage()
    filled = ModelCard(path.read_text()).data.eval_results
    assert {result.task_type for result in filled} == {"image-classification"}


def test_the_dataset_card_gives_each_column_its_kind(tmp_path):
    card = DatasetCard(DATASET_CARD.read_text(encoding="utf-8"))
    dataset = {"source": "csv", "sha256": "d" * 64, "rows": 10, "columns": ["x", "site", "id", "y"]}
    data = DataParams(
        source="csv", csv="own.csv", target="y", columns={"site": "category", "id": "ignore"}
    )
    text = DatasetCard(fill_dataset_card(card, dataset, data, DATASET_CARD)).text
    structure = read_block(text, "structure")
    for row in (
        "| `x` | numeric |",
        "| `site` | category |",
        "| `id` | ignore |",
        "| `y` | target |",
    ):
        assert row in structure


def test_the_teams_text_and_metadata_stay_and_a_rerun_changes_nothing(stage):
    path = stage.root / "model-card.md"
    text = path.read_text()
    text = text.replace("---\n", "---\nlanguage: en\n", 1)
    text = text.replace("## Uses\n", "## Uses\n\nOur own words about uses.\n", 1)
    path.write_text(text)
    stage()
    first = path.read_text()
    assert "Our own words about uses." in first
    assert ModelCard(first).data.language == "en"
    stage()
    assert path.read_text() == first


def test_a_champion_from_an_earlier_run_keeps_the_values_of_that_run(stage):
    stage()
    before = ModelCard((stage.root / "model-card.md").read_text())
    other = identity(2, "b" * 32)  # this run's candidate did not become the champion
    (stage.root / "promotion.json").write_text(json.dumps({"candidate": other.model_dump()}))
    (stage.root / "emissions.csv").write_text("emissions\n0.9\n")
    stage()
    after = ModelCard((stage.root / "model-card.md").read_text())
    assert after.data.co2_eq_emissions == before.data.co2_eq_emissions
    for block in ("parameters", "emissions"):
        assert read_block(after.text, block) == read_block(before.text, block)


def test_a_champion_the_card_never_described_gets_no_values_of_this_run(stage):
    other = identity(2, "b" * 32)
    (stage.root / "promotion.json").write_text(json.dumps({"candidate": other.model_dump()}))
    stage()
    card = ModelCard((stage.root / "model-card.md").read_text())
    assert "co2_eq_emissions" not in card.data.to_dict()
    assert read_block(card.text, "parameters").startswith("Not recorded here")


def test_a_card_without_its_markers_stops_the_stage_in_one_line(stage):
    path = stage.root / "model-card.md"
    broken = path.read_text().replace(marker("results", "end"), "")
    path.write_text(broken)
    output = stage(expect=1)
    assert output.startswith("card: ") and "`results` block" in output
    assert "Traceback" not in output
    assert path.read_text() == broken


def test_a_card_with_a_broken_metadata_header_stops_the_stage_in_one_line(stage):
    path = stage.root / "model-card.md"
    path.write_text(path.read_text().replace("---\n", "---\nmodel-index: [broken\n", 1))
    output = stage(expect=1)
    assert output.startswith("card: ") and "metadata header is invalid" in output
    assert len(output.strip().splitlines()) == 1
