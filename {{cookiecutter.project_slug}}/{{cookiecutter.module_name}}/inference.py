"""Running a bundle's model with ONNX Runtime: the one place that calls it.

`export` checks a new ONNX model against scikit-learn with it, `promote` scores bundles with it,
and the prediction service answers requests with it. Rows are float32 arrays whose columns follow
the bundle's feature order; the answer is the labels and the class probabilities (columns in the
bundle's class order). Needs numpy and onnxruntime only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from .bundle import MODEL_FILE, BundleError, BundleMetadata, OnnxSignature, read_verified


class OnnxModel:
    """An ONNX Runtime session and the signature that says how to call it."""

    def __init__(self, model: bytes, signature: OnnxSignature, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ONNX Runtime raises its own exception types
            raise BundleError(f"ONNX Runtime cannot load the model: {error}") from None
        self._input = signature.input_name
        self._outputs = [signature.label_output, signature.probabilities_output]

    def predict(self, rows: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Labels and class probabilities of float32 rows."""
        labels, probabilities = self.session.run(self._outputs, {self._input: rows})
        return [str(label) for label in labels.tolist()], probabilities


def load(folder: Path, threads: int = 1) -> tuple[BundleMetadata, OnnxModel]:
    """The verified bundle in `folder` and its model, after one row in the middle of the
    training range went through it; BundleError names the first problem."""
    metadata = read_verified(folder)
    model = OnnxModel((folder / MODEL_FILE).read_bytes(), metadata.onnx, threads)
    inputs = {node.name: node for node in model.session.get_inputs()}
    outputs = {node.name for node in model.session.get_outputs()}
    expected = metadata.onnx
    if set(inputs) != {expected.input_name}:
        raise BundleError(f"{folder}: the model takes {sorted(inputs)}, not {expected.input_name}")
    width = inputs[expected.input_name].shape[-1]
    if width != len(metadata.features):
        raise BundleError(
            f"{folder}: the model takes {width} features, the metadata lists "
            f"{len(metadata.features)}"
        )
    missing = {expected.label_output, expected.probabilities_output} - outputs
    if missing:
        raise BundleError(f"{folder}: the model lacks the outputs {sorted(missing)}")
    try:
        labels, probabilities = model.predict(middle_row(metadata))
    except Exception as error:  # whatever a broken graph raises at run time
        raise BundleError(f"{folder}: the model fails on a sample row: {error}") from None
    if probabilities.shape != (1, len(metadata.classes)) or labels[0] not in metadata.classes:
        raise BundleError(
            f"{folder}: the model's outputs do not match the classes {metadata.classes}"
        )
    return metadata, model


def middle_row(metadata: BundleMetadata) -> np.ndarray:
    """One row in the middle of each feature's training range."""
    return np.asarray([[(f.min + f.max) / 2 for f in metadata.features]], dtype=np.float32)
