"""Stage `card`: write what the pipeline measured into the model card and the dataset card.

Both cards (docs/model-card.md, docs/dataset-card.md) use the Hugging Face format: a YAML
metadata header, then Markdown sections. The team writes the sections; this stage replaces only
the text between `<!-- pipeline:NAME:start -->` and `<!-- pipeline:NAME:end -->` and the measured
metadata keys (`model-index`, `co2_eq_emissions`, `size_categories`), so every other word stays.
DVC declares the cards `persist: true` and `cache: false`: it never deletes them, git versions them.

The model card describes the champion, models/bundle. Its identity, test metrics and data hash
come from the bundle. Its parameters and emissions are this run's only when this run's candidate
is the champion (reports/promotion.json); otherwise they belong to an earlier run, and the card
keeps what it already shows for that champion. Cards are parsed with huggingface_hub, offline.
Each block the stage writes is a small function below, hence a module longer than most.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import typer
import yaml
from huggingface_hub import DatasetCard, EvalResult, ModelCard

from .bundle import BundleMetadata, ModelIdentity, read_verified
from .config import (
    BUNDLE_DIR,
    DATASET_CARD,
    EMISSIONS_FILE,
    MODEL_CARD,
    PARAMS_FILE,
    PROMOTION_FILE,
    RAW_METADATA,
    display_path,
)
from .errors import PipelineError, reported
from .params import DataParams, Params, load_params

app = typer.Typer(add_completion=False, help=__doc__)

TASK = "tabular-classification"
# Hugging Face's dataset size buckets, by upper bound.
SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")]
SIZE_CATEGORIES += [(1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]


class CardError(PipelineError):
    """A card or one of the measurements it needs cannot be read."""


def marker(name: str, edge: str) -> str:
    return f"<!-- pipeline:{name}:{edge} -->"


def read_block(text: str, name: str) -> str | None:
    """The text between a block's markers, None when the card has no such block."""
    start, end = text.find(marker(name, "start")), text.find(marker(name, "end"))
    if start < 0 or end < start:
        return None
    return text[start + len(marker(name, "start")) : end].strip()


def replace_block(text: str, name: str, body: str, card: Path) -> str:
    """Replace the text between a block's markers; CardError if the markers are gone."""
    start, end = text.find(marker(name, "start")), text.find(marker(name, "end"))
    if start < 0 or end < start:
        raise CardError(
            f"{display_path(card)} lost the markers of its `{name}` block: put back "
            f"`{marker(name, 'start')}` and `{marker(name, 'end')}` where it belongs"
        )
    return f"{text[: start + len(marker(name, 'start'))]}\n{body.strip()}\n{text[end:]}"


def load_card(path: Path, kind: type[ModelCard] | type[DatasetCard]) -> ModelCard | DatasetCard:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CardError(f"cannot read {display_path(path)}: {error.strerror or error}") from None
    if not text.startswith("---"):
        raise CardError(f"{display_path(path)} has lost its YAML metadata header (`---` ... `---`)")
    try:
        return kind(text)
    except (ValueError, yaml.YAMLError) as error:
        problem = " ".join(str(error).split())
        raise CardError(
            f"{display_path(path)}: its metadata header is invalid: {problem}"
        ) from None


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CardError(f"cannot read {display_path(path)}: {error}") from None


def last_emissions(path: Path) -> dict[str, str]:
    """The last row CodeCarbon appended to reports/emissions.csv."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise CardError(f"cannot read {display_path(path)}: {error.strerror or error}") from None
    if not rows or not rows[-1].get("emissions"):
        raise CardError(f"{display_path(path)} records no emissions: run `train` first")
    return rows[-1]


def table(rows: list[tuple[str, str]]) -> str:
    lines = ["| | |", "|---|---|", *(f"| {key} | {value} |" for key, value in rows)]
    return "\n".join(lines)


def identity_block(metadata: BundleMetadata) -> str:
    identity = metadata.identity
    positive = f" (positive: {metadata.positive_label})" if metadata.positive_label else ""
    kinds = [feature.kind for feature in metadata.features]
    inputs = ", ".join(f"{kinds.count(kind)} {kind}" for kind in dict.fromkeys(kinds))
    return table(
        [
            ("Registered model", f"`{identity.registered_model}` version {identity.version}"),
            ("MLflow run", f"`{identity.run_id}`"),
            ("model.onnx sha256", f"`{identity.sha256}`"),
            ("Trained", metadata.created_at),
            ("Classes", f"{len(metadata.classes)}: {', '.join(metadata.classes)}{positive}"),
            ("Inputs", f"{len(metadata.features)} features: {inputs}"),
        ]
    )


def training_data_block(metadata: BundleMetadata, dataset: dict[str, Any]) -> str:
    line = f"The champion was trained on data with sha256 `{metadata.data_sha256}`"
    if dataset.get("sha256") != metadata.data_sha256:
        return f"{line}, which is not the data in `data/raw/` today."
    columns = len(dataset.get("columns", []))
    return (
        f"{line}: `data/raw/dataset.csv` as it is now, {dataset.get('rows')} rows and {columns} "
        f"columns (source: {dataset.get('source')}). See the [dataset card](dataset-card.md)."
    )


def parameters_block(params: Params) -> str:
    rows = [(f"`{key}`", f"`{value}`") for key, value in params.train.model_dump().items()]
    return "From `params.yaml` (`train`) of the run that trained the champion.\n\n" + table(rows)


def results_block(metadata: BundleMetadata) -> str:
    rows = [(name, f"{value:.4f}") for name, value in metadata.metrics.items() if value is not None]
    return (
        "On the held-out test split, scored with ONNX Runtime when the bundle was exported "
        f"(largest probability difference from scikit-learn: "
        f"{metadata.parity.max_probability_difference:.1e}).\n\n{table(rows)}"
    )


def co2_metadata(row: dict[str, str]) -> dict[str, Any]:
    """Hugging Face's `co2_eq_emissions`, in grams: CodeCarbon reports kilograms."""
    return {
        "emissions": float(f"{float(row['emissions']) * 1000:.6g}"),
        "source": f"CodeCarbon {row.get('codecarbon_version', '')}".strip(),
        "training_type": "training",
        "geographical_location": row.get("country_name") or row.get("country_iso_code", ""),
        "hardware_used": f"{row.get('cpu_count', '?')} x {row.get('cpu_model', 'CPU')}",
    }


def emissions_block(row: dict[str, str]) -> str:
    grams = float(row["emissions"]) * 1000
    return table(
        [
            ("Carbon emitted", f"{grams:.6g} g CO2eq (CodeCarbon, offline estimate)"),
            ("Energy", f"{float(row.get('energy_consumed') or 0):.3g} kWh"),
            ("Hours used", f"{float(row.get('duration') or 0) / 3600:.3g}"),
            ("Hardware type", f"{row.get('cpu_count', '?')} x {row.get('cpu_model', 'CPU')}"),
            ("Compute region", row.get("country_name") or row.get("country_iso_code", "")),
        ]
    )


def eval_results(metadata: BundleMetadata) -> list[EvalResult]:
    """The test metrics as `model-index` entries; the dataset revision is the data's hash."""
    return [
        EvalResult(
            task_type=TASK,
            dataset_type="local",
            dataset_name="held-out test split of data/raw/dataset.csv",
            dataset_split="test",
            dataset_revision=metadata.data_sha256,
            metric_type=name,
            metric_value=round(value, 4),
        )
        for name, value in metadata.metrics.items()
        if value is not None
    ]


def fill_model_card(
    card: ModelCard,
    metadata: BundleMetadata,
    this_run: bool,
    dataset: dict[str, Any],
    params: Params,
    emissions: dict[str, str],
    path: Path,
) -> str:
    """The model card's new text; `this_run`: this run's candidate is the champion."""
    text = card.text
    known = read_block(text, "identity") or ""
    card.data.model_name = metadata.identity.registered_model
    card.data.eval_results = eval_results(metadata)
    if this_run:
        card.data["co2_eq_emissions"] = co2_metadata(emissions)
        text = replace_block(text, "parameters", parameters_block(params), path)
        text = replace_block(text, "emissions", emissions_block(emissions), path)
    elif metadata.identity.run_id not in known:  # the card showed another model: clear its values
        card.data["co2_eq_emissions"] = None
        unknown = f"Not recorded here: see MLflow run `{metadata.identity.run_id}`."
        text = replace_block(text, "parameters", unknown, path)
        text = replace_block(text, "emissions", unknown, path)
    text = replace_block(text, "identity", identity_block(metadata), path)
    text = replace_block(text, "training-data", training_data_block(metadata, dataset), path)
    card.text = replace_block(text, "results", results_block(metadata), path)
    return card.content


def fill_dataset_card(
    card: DatasetCard, dataset: dict[str, Any], data: DataParams, path: Path
) -> str:
    rows, columns = int(dataset.get("rows", 0)), list(dataset.get("columns", []))
    target = data.target
    card.data.size_categories = next((c for bound, c in SIZE_CATEGORIES if rows < bound), "other")
    summary = table(
        [
            ("File", "`data/raw/dataset.csv` (versioned by DVC)"),
            ("Source", f"`{dataset.get('source')}` (`data` in params.yaml)"),
            ("Rows", str(rows)),
            ("Columns", f"{len(columns)}: {len(columns) - 1} features and the target `{target}`"),
            ("sha256", f"`{dataset.get('sha256')}`"),
        ]
    )
    fields = table(
        [
            (f"`{name}`", "target" if name == target else data.columns.get(name, "numeric"))
            for name in columns
        ]
    )
    text = replace_block(card.text, "summary", summary, path)
    card.text = replace_block(text, "structure", fields, path)
    return card.content


def champion_is_this_run(promotion_file: Path, metadata: BundleMetadata) -> bool:
    """Whether the candidate that promote judged in this run is the served champion."""
    record = read_json(promotion_file)
    try:
        candidate = ModelIdentity.model_validate(record.get("candidate"))
    except ValueError:
        raise CardError(f"{display_path(promotion_file)} names no valid candidate") from None
    return candidate == metadata.identity


@app.command()
def main(
    model_card: Path = MODEL_CARD,
    dataset_card: Path = DATASET_CARD,
    bundle_dir: Path = BUNDLE_DIR,
    promotion_file: Path = PROMOTION_FILE,
    emissions_file: Path = EMISSIONS_FILE,
    metadata_path: Path = RAW_METADATA,
    params_file: Path = PARAMS_FILE,
) -> None:
    """Fill the measured parts of the model card and the dataset card."""
    with reported("card"):
        params = load_params(params_file)
        dataset = read_json(metadata_path)
        metadata = read_verified(bundle_dir)
        this_run = champion_is_this_run(promotion_file, metadata)
        emissions = last_emissions(emissions_file) if this_run else {}
        model = load_card(model_card, ModelCard)
        data_card = load_card(dataset_card, DatasetCard)
        filled = fill_model_card(model, metadata, this_run, dataset, params, emissions, model_card)
        described = fill_dataset_card(data_card, dataset, params.data, dataset_card)
        model_card.write_text(filled, encoding="utf-8")
        dataset_card.write_text(described, encoding="utf-8")
    typer.echo(
        f"card: {display_path(model_card)} describes {metadata.identity}; "
        f"{display_path(dataset_card)} describes {dataset.get('rows')} rows"
    )


if __name__ == "__main__":
    app()
