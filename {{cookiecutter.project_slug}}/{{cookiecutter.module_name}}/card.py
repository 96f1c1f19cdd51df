"""Stage `card`: write what the pipeline measured into the model card and the dataset card.

Both cards (docs/model-card.md, docs/dataset-card.md) use Hugging Face's format, parsed offline
with huggingface_hub: a YAML metadata header, then Markdown. The stage rewrites only the text
between `<!-- pipeline:NAME:start -->` and `<!-- pipeline:NAME:end -->` and the measured metadata
keys (`model-index`, `co2_eq_emissions`, `size_categories`): every other word is the team's.

The model card describes the champion, models/bundle. Its parameters and emissions are this run's
only when this run's candidate became the champion (reports/promotion.json); otherwise the card
keeps what it already shows for that champion.
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
    EXPLANATIONS_DIR,
    MODEL_CARD,
    PARAMS_FILE,
    PROMOTION_FILE,
    RAW_METADATA,
    display_path,
)
from .errors import PipelineError, reported
from .params import DataParams, Params, load_params

app = typer.Typer(add_completion=False, help=__doc__)

# The model-index task is the card's own pipeline_tag (set by the project's task), else this.
DEFAULT_TASK = "tabular-classification"
# Hugging Face's dataset size buckets, by upper bound.
SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")]
SIZE_CATEGORIES += [(1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]


class CardError(PipelineError):
    """A card or one of the measurements it needs cannot be read."""


def marker(name: str, edge: str) -> str:
    return f"<!-- pipeline:{name}:{edge} -->"


def block_span(text: str, name: str) -> tuple[int, int] | None:
    """Where the text between a block's markers starts and ends; None without the markers."""
    start, end = text.find(marker(name, "start")), text.find(marker(name, "end"))
    return (start + len(marker(name, "start")), end) if 0 <= start < end else None


def read_block(text: str, name: str) -> str | None:
    span = block_span(text, name)
    return text[span[0] : span[1]].strip() if span else None


def replace_blocks(card: ModelCard | DatasetCard, blocks: dict[str, str], path: Path) -> str:
    """The card's content with each block's text replaced; CardError if its markers are gone."""
    text = card.text
    for name, body in blocks.items():
        span = block_span(text, name)
        if span is None:
            raise CardError(
                f"{display_path(path)} lost the markers of its `{name}` block: put back "
                f"`{marker(name, 'start')}` and `{marker(name, 'end')}` where it belongs"
            )
        text = f"{text[: span[0]]}\n{body.strip()}\n{text[span[1] :]}"
    card.text = text
    return card.content


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise CardError(f"cannot read {display_path(path)}: {error.strerror or error}") from None


def load_card(path: Path, kind: type[ModelCard] | type[DatasetCard]) -> ModelCard | DatasetCard:
    text = read_text(path)
    if not text.startswith("---"):
        raise CardError(f"{display_path(path)} has lost its YAML metadata header (`---` ... `---`)")
    try:
        return kind(text)
    except (ValueError, yaml.YAMLError) as error:
        raise CardError(f"{display_path(path)}: its metadata header is invalid: {error}") from None


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(read_text(path))
    except ValueError as error:
        raise CardError(f"cannot read {display_path(path)}: {error}") from None


def last_emissions(path: Path) -> dict[str, str]:
    """The last row CodeCarbon appended to reports/emissions.csv."""
    rows = list(csv.DictReader(read_text(path).splitlines()))
    if not rows or not rows[-1].get("emissions"):
        raise CardError(f"{display_path(path)} records no emissions: run `train` first")
    return rows[-1]


def table(rows: list[tuple[str, str]], header: tuple[str, str] = ("", "")) -> str:
    head = "| {} | {} |".format(*header) if any(header) else "| | |"
    return "\n".join([head, "|---|---|", *(f"| {key} | {value} |" for key, value in rows)])


def identity_block(metadata: BundleMetadata) -> str:
    identity = metadata.identity
    positive = f" (positive: {metadata.positive_label})" if metadata.positive_label else ""
    kinds = [feature.kind for feature in metadata.features]
    inputs = f"{len(kinds)} features: " + ", ".join(
        f"{kinds.count(kind)} {kind}" for kind in dict.fromkeys(kinds)
    )
    if (image := metadata.image_feature) is not None:
        inputs = (
            f"1 picture (`{image.name}`), read as {image.width} x {image.height} {image.mode}: "
            f"{image.size} float32 values 0..1"
        )
    return table(
        [
            ("Registered model", f"`{identity.registered_model}` version {identity.version}"),
            ("MLflow run", f"`{identity.run_id}`"),
            ("model.onnx sha256", f"`{identity.sha256}`"),
            ("Trained", metadata.created_at),
            ("Classes", f"{len(metadata.classes)}: {', '.join(metadata.classes)}{positive}"),
            ("Inputs", inputs),
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


def results_block(metadata: BundleMetadata) -> str:
    rows = [(name, f"{value:.4f}") for name, value in metadata.metrics.items() if value is not None]
    return (
        "On the held-out test split, scored with ONNX Runtime when the bundle was exported "
        f"(largest probability difference from scikit-learn: "
        f"{metadata.parity.max_probability_difference:.1e}).\n\n{table(rows)}"
    )


def explanations_block(document: dict[str, Any], metadata: BundleMetadata) -> str:
    """The `explain` stage's top five per class, when it explained this model."""
    if document.get("run_id") != metadata.identity.run_id:
        run = metadata.identity.run_id
        return f"Not recorded here: see the `explanations` artefacts of MLflow run `{run}`."
    rows = [(f"`{label}`", ", ".join(names)) for label, names in document.get("top", {}).items()]
    return (
        f"Of the test split's {document.get('samples')} sampled rows, by {document.get('method')} "
        "(`make pipeline`'s `explain` stage; figure and JSON in `reports/explanations/`).\n\n"
        + table(rows, header=("predicted class (or overall)", "most important first"))
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
    co2 = co2_metadata(row)
    return table(
        [
            ("Carbon emitted", f"{co2['emissions']:.6g} g CO2eq (CodeCarbon, offline estimate)"),
            ("Energy", f"{float(row.get('energy_consumed') or 0):.3g} kWh"),
            ("Hours used", f"{float(row.get('duration') or 0) / 3600:.3g}"),
            ("Hardware type", co2["hardware_used"]),
            ("Compute region", co2["geographical_location"]),
        ]
    )


def fill_model_card(
    card: ModelCard, metadata: BundleMetadata, params: Params, emissions: dict[str, str] | None
) -> dict[str, str]:
    """Fill the card's metadata and return its new blocks; `emissions` only when this run's
    candidate is the champion, whose parameters are then `params`."""
    card.data.model_name = metadata.identity.registered_model
    card.data.eval_results = [
        EvalResult(
            task_type=card.data.pipeline_tag or DEFAULT_TASK,
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
    blocks = {"identity": identity_block(metadata), "results": results_block(metadata)}
    if emissions is not None:
        card.data["co2_eq_emissions"] = co2_metadata(emissions)
        rows = [(f"`{key}`", f"`{value}`") for key, value in params.train.model_dump().items()]
        blocks["parameters"] = (
            "From `params.yaml` (`train`) of the run that trained the champion.\n\n" + table(rows)
        )
        blocks["emissions"] = emissions_block(emissions)
    elif metadata.identity.run_id not in (read_block(card.text, "identity") or ""):
        # The card showed another model: clear its values.
        card.data["co2_eq_emissions"] = None
        unknown = f"Not recorded here: see MLflow run `{metadata.identity.run_id}`."
        blocks["parameters"] = blocks["emissions"] = unknown
    return blocks


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
    fields = [
        (f"`{name}`", "target" if name == target else data.columns.get(name, "numeric"))
        for name in columns
    ]
    return replace_blocks(card, {"summary": summary, "structure": table(fields)}, path)


@app.command()
def main(
    model_card: Path = MODEL_CARD,
    dataset_card: Path = DATASET_CARD,
    bundle_dir: Path = BUNDLE_DIR,
    promotion_file: Path = PROMOTION_FILE,
    emissions_file: Path = EMISSIONS_FILE,
    explanations_file: Path = EXPLANATIONS_DIR / "explanations.json",
    metadata_path: Path = RAW_METADATA,
    params_file: Path = PARAMS_FILE,
) -> None:
    """Fill the measured parts of the model card and the dataset card."""
    with reported("card"):
        params = load_params(params_file)
        dataset = read_json(metadata_path)
        metadata = read_verified(bundle_dir)
        try:  # the candidate that promote judged in this run
            candidate = ModelIdentity.model_validate(read_json(promotion_file).get("candidate"))
        except ValueError:
            raise CardError(f"{display_path(promotion_file)} names no valid candidate") from None
        this_run = candidate == metadata.identity
        emissions = last_emissions(emissions_file) if this_run else None
        model = load_card(model_card, ModelCard)
        data_card = load_card(dataset_card, DatasetCard)
        blocks = fill_model_card(model, metadata, params, emissions)
        blocks["training-data"] = training_data_block(metadata, dataset)
        blocks["explanations"] = explanations_block(read_json(explanations_file), metadata)
        filled = replace_blocks(model, blocks, model_card)
        described = fill_dataset_card(data_card, dataset, params.data, dataset_card)
        model_card.write_text(filled, encoding="utf-8")
        dataset_card.write_text(described, encoding="utf-8")
    typer.echo(
        f"card: {display_path(model_card)} describes {metadata.identity}; "
        f"{display_path(dataset_card)} describes {dataset.get('rows')} rows"
    )


if __name__ == "__main__":
    app()
