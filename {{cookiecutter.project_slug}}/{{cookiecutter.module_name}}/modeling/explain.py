"""Stage `explain`: global explanations of the exported candidate, as a figure and JSON.

It runs the candidate bundle's ONNX model (inference.py), the model that would be served, on a
seeded sample of the test split (sizes in params.yaml's `explain:`), and writes
reports/explanations/explanations.json and .png, logged to the candidate's MLflow run; the
`card` stage summarises the JSON in the model card. One method per kind of input:
- a table: SHAP values (shap's model-agnostic permutation explainer over the ONNX model, since
  shap cannot read ONNX), their mean absolute value per feature over the sample and the classes;
- a text: how much the predicted class's probability drops when a word is removed (occlusion:
  it works for every algorithm, not only a linear model's coefficients), averaged per class;
- a picture: the same drop when one pixel is set to the background (0), as a heatmap.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import typer
from matplotlib.figure import Figure

from ..bundle import BundleMetadata, ImageFeature, TextFeature
from ..config import CANDIDATE_BUNDLE_DIR, EXPLANATIONS_DIR, PARAMS_FILE, TEST_FILE
from ..errors import reported
from ..inference import OnnxModel, load
from ..params import ExplainParams, load_params
from ..tracking import connect, tracking_errors
from .splits import image_of, kinds_of, read_split

app = typer.Typer(add_completion=False, help=__doc__)

TOP = 20  # features, words or pixels kept per class in the JSON
WORD = re.compile(r"\w+")


def sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=min(size, len(frame)), random_state=seed)


def ranked(values: dict[str, float]) -> list[dict]:
    """`values` as [{"name", "value"}], largest first, at most TOP."""
    order = sorted(values.items(), key=lambda item: -abs(item[1]))[:TOP]
    return [{"name": name, "value": round(float(value), 6)} for name, value in order]


def table_importance(model: OnnxModel, rows: pd.DataFrame, background: pd.DataFrame) -> dict:
    """Mean |SHAP value| of each feature, over the rows and every class's probability. SHAP
    masks numbers only: a string column goes in as the index of its value among those seen."""
    import shap  # the pipeline's dependency only: never in the service

    both = pd.concat([rows, background])
    strings = {c: sorted(both[c].astype(str).unique()) for c in both if both[c].dtype == object}

    def coded(frame: pd.DataFrame) -> np.ndarray:
        codes = {c: frame[c].astype(str).map(values.index) for c, values in strings.items()}
        return frame.assign(**codes).to_numpy(dtype=np.float64)

    def probabilities(values: np.ndarray) -> np.ndarray:
        if not strings:  # numbers only: the matrix is the model's input as it is
            return model.predict(values)[1]  # type: ignore[arg-type]
        frame = pd.DataFrame(values, columns=rows.columns).astype(object)
        for column, known in strings.items():
            frame[column] = [known[int(code)] for code in frame[column]]
        return model.predict(frame.to_numpy().tolist())[1]

    explainer = shap.Explainer(probabilities, coded(background), seed=0)
    values = explainer(coded(rows), silent=True).values  # rows x features (x classes)
    mean = np.abs(values).reshape(len(rows), rows.shape[1], -1).mean(axis=(0, 2))
    return {"overall": ranked(dict(zip(rows.columns, mean, strict=True)))}


def drops(model: OnnxModel, row: list, variants: list[list]) -> tuple[str, np.ndarray]:
    """The row's predicted label, and how much its probability falls in each variant."""
    labels, base = model.predict([row])
    column = int(np.argmax(base[0]))
    return labels[0], base[0, column] - model.predict(variants)[1][:, column]


def text_importance(model: OnnxModel, texts: list[str]) -> dict:
    """Per predicted class, each word's mean probability drop when removed from its texts."""
    totals: dict[str, dict[str, list[float]]] = {}
    for text in texts:
        words = sorted(set(WORD.findall(text)))
        if not words:
            continue
        variants = [[re.sub(rf"\b{re.escape(word)}\b", " ", text)] for word in words]
        label, fall = drops(model, [text], variants)
        for word, value in zip(words, fall, strict=True):
            totals.setdefault(label, {}).setdefault(word.lower(), []).append(float(value))
    return {
        label: ranked({word: float(np.mean(v)) for word, v in per_word.items()})
        for label, per_word in sorted(totals.items())
    }


def pixel_importance(model: OnnxModel, pictures: np.ndarray, image: ImageFeature) -> dict:
    """Per predicted class, each pixel's mean probability drop when set to 0, as rows."""
    size = image.size
    maps: dict[str, list[np.ndarray]] = {}
    for picture in pictures:
        variants = np.repeat(picture[None, :], size, axis=0)
        variants[np.arange(size), np.arange(size)] = 0.0
        label, fall = drops(model, list(picture), list(variants))
        maps.setdefault(label, []).append(fall)
    shape = (image.height, -1)
    return {
        label: np.mean(found, axis=0).reshape(shape).round(6).tolist()
        for label, found in sorted(maps.items())
    }


def draw(document: dict, path: Path) -> None:
    """Bars of the top ten per class (or overall) for features and words; a heatmap per class
    for pixels."""
    matplotlib.use("Agg")  # files only, never a window
    shown = list(document["values"].items())[:10]
    figure = Figure(figsize=(3.2 * len(shown) + 1, 3.5 if document["kind"] == "image" else 5))
    axes = np.atleast_1d(figure.subplots(1, len(shown)))
    for axis, (label, values) in zip(axes, shown, strict=True):
        if document["kind"] == "image":
            axis.imshow(np.asarray(values), cmap="hot")
            axis.axis("off")
        else:
            top = values[:10][::-1]
            axis.barh([item["name"] for item in top], [item["value"] for item in top])
        axis.set_title(label)
    figure.suptitle(f"{document['method']}, {document['samples']} test rows")
    figure.set_layout_engine("constrained")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def kind_of(metadata: BundleMetadata) -> str:
    """image, text (one text feature) or table (anything else, explained by SHAP)."""
    if metadata.image_feature is not None:
        return "image"
    only = metadata.features[0]
    return "text" if len(metadata.features) == 1 and isinstance(only, TextFeature) else "table"


def explain(
    metadata: BundleMetadata, model: OnnxModel, test: pd.DataFrame, settings: ExplainParams
) -> dict:
    """The explanation document: kind, method, sample size, seconds and values per class (or
    `overall` for SHAP)."""
    started = time.perf_counter()
    rows = sample(test, settings.samples, settings.seed)
    kind = kind_of(metadata)
    if kind == "image":
        image = metadata.image_feature
        assert image is not None  # kind_of said so
        pictures = rows.to_numpy(np.float32)
        method, values = "pixel occlusion", pixel_importance(model, pictures, image)
    elif kind == "text":
        texts = rows.iloc[:, 0].astype(str).tolist()
        method, values = "word occlusion", text_importance(model, texts)
    else:
        background = sample(test, settings.background, settings.seed + 1)
        method, values = "shap permutation", table_importance(model, rows, background)
    seconds = round(time.perf_counter() - started, 2)
    return {"kind": kind, "method": method, "samples": len(rows), "seconds": seconds,
            "top": {label: top_five(found) for label, found in values.items()},
            "values": values}  # fmt: skip


def top_five(values: list) -> list[str]:
    """The five largest of a class's ranked items (their names) or heatmap (`row r column c`)."""
    if values and isinstance(values[0], dict):
        return [item["name"] for item in values[:5]]
    cells = [(v, r, c) for r, line in enumerate(values) for c, v in enumerate(line)]
    return [f"row {r} column {c}" for _, r, c in sorted(cells, reverse=True)[:5]]


def log_explanation(run_id: str, files: list[Path]) -> None:
    client = connect()
    with tracking_errors():
        for path in files:
            client.log_artifact(run_id, str(path), artifact_path="explanations")


@app.command()
def main(
    bundle_dir: Path = CANDIDATE_BUNDLE_DIR,
    test_path: Path = TEST_FILE,
    params_file: Path = PARAMS_FILE,
    output_dir: Path = EXPLANATIONS_DIR,
    log: bool = typer.Option(True, help="Log the files to the candidate's MLflow run"),
) -> None:
    """Explain the candidate bundle's model on a sample of the test split."""
    with reported("explain"):
        params = load_params(params_file)
        metadata, model = load(bundle_dir)
        features = metadata.features
        test, _ = read_split(test_path, metadata.target, kinds_of(features), image_of(features))
        explained = explain(metadata, model, test, params.explain)
        document = {"run_id": metadata.identity.run_id, **explained}
        output_dir.mkdir(parents=True, exist_ok=True)
        json_path, figure_path = output_dir / "explanations.json", output_dir / "explanations.png"
        json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        draw(document, figure_path)
        if log:
            log_explanation(metadata.identity.run_id, [json_path, figure_path])
    typer.echo(f"explain: {document['method']} on {document['samples']} rows, "
               f"{document['seconds']} s -> {output_dir}")  # fmt: skip


if __name__ == "__main__":
    app()
