"""Running a bundle's model with ONNX Runtime: the one place that calls it.

`export` checks a new ONNX model against scikit-learn with it, `promote` scores bundles with it,
and the prediction service and the drift job run the model with it. A row is a record's values in
the bundle's feature order (numbers, then strings: see `bundle.onnx_inputs`; an image model's row
is the picture's pixel values as images.py gives them, flat or as `(pixels,)`); the answer is the
labels and the
class probabilities, in the bundle's class order. Needs numpy and onnxruntime only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .bundle import (
    MODEL_FILE,
    BundleError,
    BundleMetadata,
    CategoryFeature,
    ImageFeature,
    NumericFeature,
    OnnxInput,
    OnnxSignature,
    collapsed,
    read_verified,
)

Row = Sequence[Any]


class OnnxModel:
    """An ONNX Runtime session, and how rows in feature order become its input tensors."""

    def __init__(
        self,
        model: bytes,
        signature: OnnxSignature,
        inputs: Sequence[OnnxInput],
        threads: int = 1,
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ONNX Runtime raises its own exception types
            raise BundleError(f"ONNX Runtime cannot load the model: {error}") from None
        self.outputs = [signature.label_output, signature.probabilities_output]
        self.image_name = next((i.name for i in inputs if i.kind == "image"), None)
        numeric = [i for i in inputs if i.kind == "numeric"]
        self.numeric_name = numeric[0].name if numeric else None
        # How many of a row's first values are numbers: its numeric features, or one for an
        # image's row (its pixels).
        self.numeric_count = len(numeric[0].features) if numeric else int(bool(self.image_name))
        # Each string input, with the position of its feature in a row and whether it is a text.
        self.strings = [
            (item.name, self.numeric_count + index, item.kind == "text")
            for index, item in enumerate(i for i in inputs if i.dtype == "string")
        ]

    def feeds(self, rows: Sequence[Row]) -> dict[str, np.ndarray]:
        """The input tensors of `rows`: numeric values as float32, strings as [rows, 1], an
        image's pixels as float32 [rows, size]."""
        if self.image_name is not None:  # an image's pixel values, as (pixels,) or flat
            pixels = np.asarray(rows, dtype=np.float32)
            return {self.image_name: pixels.reshape(len(rows), -1)}
        if not self.strings:  # numbers only: the whole row is the numeric tensor
            return {self.numeric_name: np.asarray(rows, dtype=np.float32)}  # type: ignore[dict-item]
        feeds: dict[str, np.ndarray] = {}
        if self.numeric_name is not None:
            count = self.numeric_count
            feeds[self.numeric_name] = np.asarray([row[:count] for row in rows], dtype=np.float32)
        for name, position, text in self.strings:
            column = [str(row[position]) for row in rows]
            if text:  # the same whitespace rule as training
                column = [collapsed(value) for value in column]
            feeds[name] = np.asarray(column, dtype=object).reshape(len(rows), 1)
        return feeds

    def predict(self, rows: Sequence[Row]) -> tuple[list[str], np.ndarray]:
        """Labels and class probabilities of rows in feature order."""
        labels, probabilities = self.session.run(self.outputs, self.feeds(rows))
        return [str(label) for label in labels.tolist()], probabilities


def load(folder: Path, threads: int = 1) -> tuple[BundleMetadata, OnnxModel]:
    """The verified bundle in `folder` and its model, once its inputs and outputs match the
    metadata and a sample row went through it; BundleError names the first problem."""
    metadata = read_verified(folder)
    expected = metadata.onnx_inputs
    model = OnnxModel((folder / MODEL_FILE).read_bytes(), metadata.onnx, expected, threads)
    takes = {node.name: node.shape[-1] for node in model.session.get_inputs()}
    gives = {item.name: item.width for item in expected}
    if takes != gives:
        raise BundleError(
            f"{folder}: the model takes the inputs (and widths) {takes}, the metadata's features "
            f"make {gives}"
        )
    missing = set(model.outputs) - {node.name for node in model.session.get_outputs()}
    if missing:
        raise BundleError(f"{folder}: the model lacks the outputs {sorted(missing)}")
    try:
        labels, probabilities = model.predict([sample_row(metadata)])
    except Exception as error:  # whatever a broken graph raises at run time
        raise BundleError(f"{folder}: the model fails on a sample row: {error}") from None
    if probabilities.shape != (1, len(metadata.classes)) or labels[0] not in metadata.classes:
        raise BundleError(
            f"{folder}: the model's outputs do not match the classes {metadata.classes}"
        )
    return metadata, model


def sample_row(metadata: BundleMetadata) -> list[Any]:
    """One row: the middle of each numeric feature's training range, each category's first
    value, an empty text, a black image."""
    row: list[Any] = []
    for feature in metadata.features:
        if isinstance(feature, ImageFeature):
            row.append(np.zeros(feature.size, dtype=np.float32))
        elif isinstance(feature, NumericFeature):
            row.append((feature.min + feature.max) / 2)
        elif isinstance(feature, CategoryFeature):
            row.append(feature.categories[0])
        else:
            row.append("")
    return row
