"""Stage `export`: turn the candidate into an ONNX bundle, check it and register it.

model.onnx must agree with scikit-learn on the test split (same labels, probabilities within
1e-5) or the stage stops and nothing is registered. The candidate's MLflow model then becomes a
version of `mlflow.registered_model` tagged with model.onnx's sha256, and the bundle goes to
models/candidate_bundle/ and to the run under `bundle/` (for `make fetch-model`).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import typer
from onnx import helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline

from ..bundle import (
    BundleError,
    BundleMetadata,
    Feature,
    ModelIdentity,
    OnnxSignature,
    Parity,
    onnx_inputs,
    write,
)
from ..config import (
    BUNDLE_ARTIFACT,
    CANDIDATE_BUNDLE_DIR,
    CANDIDATE_DIR,
    METRICS_FILE,
    PARAMS_FILE,
    TEST_FILE,
    running_experiment,
)
from ..errors import reported
from ..inference import OnnxModel
from ..params import Params, load_params
from ..tracking import connect, tracking_errors
from .candidate import CandidateRun, read_candidate
from .registry import register
from .splits import image_of, kinds_of, read_split

app = typer.Typer(add_completion=False, help=__doc__)

SIGNATURE = OnnxSignature(
    label_output="label",
    probabilities_output="probabilities",
    # Opsets that ONNX Runtime has run for years, so an older runtime in the service still loads it.
    opset={"": 17, "ai.onnx.ml": 3},
)
# Float32 arithmetic in ONNX Runtime moves probabilities by ~1e-6; one tree of the default forest
# changing its vote moves them by 5e-3. The tolerance tells the two apart.
PROBABILITY_TOLERANCE = 1e-5

# scikit-learn's word pattern in RE2 syntax; the converter's default, [a-zA-Z0-9_]+, splits
# "café" and keeps one-letter words.
ONNX_WORD_PATTERN = r"[\p{L}\p{N}_]{2,}"
# ONNX Runtime lowercases in the locale the model names, by default en_US.UTF-8, which slim images
# lack (the model then fails to load); the converter sets no locale for a character vectorizer.
ONNX_TEXT_LOCALE = "C.UTF-8"


def to_onnx(model: Pipeline, features: list[Feature]) -> bytes:
    """The fitted pipeline as ONNX: bundle.onnx_inputs in, labels and a probability tensor out."""
    if hasattr(model.steps[-1][1], "bundle_onnx"):  # a team's network (modeling/team_onnx.py)
        return model.steps[-1][1].bundle_onnx(onnx_inputs(features)[0].name, SIGNATURE)
    initial_types = [
        (item.name, FloatTensorType([None, item.width]))
        if item.dtype == "float32"
        else (item.name, StringTensorType([None, 1]))
        for item in onnx_inputs(features)
    ]
    options: dict[int, dict] = {id(model.steps[-1][1]): {"zipmap": False}}
    columns = model.named_steps.get("columns")  # none for an image model: it reads pixels
    for step in columns.named_transformers_.values() if columns else ():
        if isinstance(step, TfidfVectorizer) and step.analyzer == "word":
            options[id(step)] = {"tokenexp": ONNX_WORD_PATTERN}
    with warnings.catch_warnings():
        # A character vectorizer "may not work": check_parity proves it does, for this model.
        warnings.filterwarnings("ignore", "The conversion of CountVectorizer may not work")
        onnx_model = convert_sklearn(
            model,
            # Not a random id: the same model gives the same bytes, so the same sha256.
            name="model",
            initial_types=initial_types,
            options=options,
            target_opset=SIGNATURE.opset,
        )
    for node in onnx_model.graph.node:
        if node.op_type == "StringNormalizer":
            kept = [attribute for attribute in node.attribute if attribute.name != "locale"]
            del node.attribute[:]
            node.attribute.extend([*kept, helper.make_attribute("locale", ONNX_TEXT_LOCALE)])
    outputs = [output.name for output in onnx_model.graph.output]
    if outputs != [SIGNATURE.label_output, SIGNATURE.probabilities_output]:
        raise BundleError(f"the converter produced the outputs {outputs}")
    # The converter lists opsets in set order, which changes with Python's hash seed: sorted,
    # the same model gives the same bytes in every process.
    opsets = sorted(onnx_model.opset_import, key=lambda opset: opset.domain)
    del onnx_model.opset_import[:]
    onnx_model.opset_import.extend(opsets)
    return onnx_model.SerializeToString()


def signature_of(onnx_bytes: bytes) -> OnnxSignature:
    """SIGNATURE with the opsets model.onnx imports: a team's network keeps its own."""
    imported = onnx.load_from_string(onnx_bytes).opset_import
    return SIGNATURE.model_copy(update={"opset": {item.domain: item.version for item in imported}})


def check_parity(model: Pipeline, onnx_model: OnnxModel, features: pd.DataFrame) -> Parity:
    """Compare ONNX Runtime with scikit-learn on `features`; BundleError if they differ."""
    # Both get the float32 values the service will send, so only the conversion is compared.
    same_rows = features.copy()
    numeric = features.select_dtypes("number").columns
    same_rows[numeric] = features[numeric].to_numpy(np.float32).astype(np.float64)
    onnx_labels, onnx_probabilities = onnx_model.predict(
        list(same_rows.itertuples(index=False, name=None))
    )
    sklearn_labels = model.predict(same_rows).astype(str)
    mismatched = np.asarray(onnx_labels) != sklearn_labels
    differences = np.abs(onnx_probabilities - model.predict_proba(same_rows)).max(axis=1)
    difference = float(differences.max(initial=0))
    if mismatched.any() or difference > PROBABILITY_TOLERANCE:
        worst = int(np.argmax(differences + mismatched))
        values = [f"{name}={str(value)[:40]!r}" for name, value in same_rows.iloc[worst].items()]
        shown = ", ".join(values[:6]) + (", ..." if len(values) > 6 else "")
        raise BundleError(
            f"ONNX and scikit-learn disagree on the test split: {int(mismatched.sum())} labels "
            f"differ, probabilities by up to {difference:.2e} (tolerance "
            f"{PROBABILITY_TOLERANCE:.0e}), most on row {worst} "
            f"({shown}); nothing was registered"
        )
    return Parity(
        rows=len(features), max_probability_difference=difference, tolerance=PROBABILITY_TOLERANCE
    )


def export(
    candidate_dir: Path, test_path: Path, metrics_file: Path, bundle_dir: Path, params: Params
) -> BundleMetadata:
    """Convert, check, register and write the candidate's bundle; return its metadata."""
    model, run = read_candidate(candidate_dir)
    features, _ = read_split(
        test_path, params.data.target, kinds_of(run.features), image_of(run.features)
    )
    onnx_bytes = to_onnx(model, run.features)
    signature = signature_of(onnx_bytes)
    parity = check_parity(
        model, OnnxModel(onnx_bytes, signature, onnx_inputs(run.features)), features
    )

    try:
        report = json.loads(metrics_file.read_text(encoding="utf-8"))
        metrics = {key: value for key, value in report.items() if key != "per_class"}
    except (OSError, ValueError, AttributeError) as error:
        raise BundleError(f"cannot read {metrics_file} ({error}): run `evaluate` first") from None

    client = connect()
    sha256 = hashlib.sha256(onnx_bytes).hexdigest()
    name, experiment = params.mlflow.registered_model, running_experiment()
    identity = register(client, name, run.run_id, run.model_uri, sha256, experiment)
    metadata = build_metadata(identity, run, model, params, parity, metrics, signature)
    write(bundle_dir, onnx_bytes, metadata)
    with tracking_errors():
        client.log_artifacts(run.run_id, str(bundle_dir), BUNDLE_ARTIFACT)
    return metadata


def build_metadata(
    identity: ModelIdentity,
    run: CandidateRun,
    model: Pipeline,
    params: Params,
    parity: Parity,
    metrics: dict[str, float | None],
    signature: OnnxSignature,
) -> BundleMetadata:
    """metadata.json of the candidate's bundle."""
    return BundleMetadata(
        created_at=run.trained_at,  # not the export's time: exporting again gives the same bytes
        identity=identity,
        data_sha256=run.data_sha256,
        target=params.data.target,
        positive_label=params.data.positive_label,
        classes=[str(label) for label in model.classes_],
        features=run.features,
        onnx=signature,
        metrics=metrics,
        parity=parity,
        libraries={
            package: version(package)
            for package in ("scikit-learn", "skl2onnx", "onnx", "onnxruntime")
        },
    )


@app.command()
def main(
    candidate_dir: Path = CANDIDATE_DIR,
    test_path: Path = TEST_FILE,
    metrics_file: Path = METRICS_FILE,
    bundle_dir: Path = CANDIDATE_BUNDLE_DIR,
    params_file: Path = PARAMS_FILE,
) -> None:
    """Export the candidate to an ONNX bundle and register it."""
    typer.echo("export: ONNX conversion, parity check, registration (about 10 s)")
    with reported("export"):
        metadata = export(
            candidate_dir, test_path, metrics_file, bundle_dir, load_params(params_file)
        )
    typer.echo(
        f"export: {metadata.identity} -> {bundle_dir} (ONNX parity on {metadata.parity.rows} "
        f"test rows, max probability difference {metadata.parity.max_probability_difference:.1e})"
    )


if __name__ == "__main__":
    app()
