"""A small image bundle for monitoring's tests: scikit-learn's built-in 8 x 8 digits written as
PNG files with their split manifests, and an MLP trained on them, converted to ONNX as the
pipeline's export does (input `image_<name>`, float32 [rows, size]; probabilities as a tensor).

Test support, kept out of the package. It needs neither the pipeline's files nor MLflow, and
trains in about a second. The pictures' paths in the manifests are absolute: the package reads a
path relative to the project root, and an absolute one as it is.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from {{ cookiecutter.module_name }}.bundle import (
    BundleMetadata,
    ImageFeature,
    ModelIdentity,
    Parity,
    onnx_inputs,
    write,
)
from {{ cookiecutter.module_name }}.inference import (
    OnnxModel,
)
from {{ cookiecutter.module_name }}.modeling.export import (
    SIGNATURE,
)

FEATURE = ImageFeature(name="image", width=8, height=8, mode="L")


@dataclass(frozen=True)
class DigitsBundle:
    directory: Path  # model.onnx and metadata.json
    metadata: BundleMetadata
    train_file: Path  # manifests: `image` (the PNG's path) and the target
    test_file: Path

    @property
    def target(self) -> str:
        return self.metadata.target


def write_pictures(folder: Path, target: str) -> pd.DataFrame:
    """Each of the 1,797 digits as an 8 x 8 grey PNG file in `folder`; their manifest."""
    digits = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, (values, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        path = folder / f"{label}-{index:04d}.png"
        Image.fromarray((values * 255 / 16).astype(np.uint8), mode="L").save(path)
        rows.append({"image": str(path), target: str(label)})
    return pd.DataFrame(rows)


def digits_bundle(folder: Path, target: str, version: int = 2) -> DigitsBundle:
    manifest = write_pictures(folder / "pictures", target)
    train, test = train_test_split(
        manifest, test_size=0.25, random_state=0, stratify=manifest[target]
    )
    train_file, test_file = folder / "train.csv", folder / "test.csv"
    train.to_csv(train_file, index=False)
    test.to_csv(test_file, index=False)

    from {{ cookiecutter.module_name }} import images

    def pixels(split: pd.DataFrame) -> np.ndarray:
        return np.stack([images.load_pixels(Path(p), FEATURE) for p in split["image"]])

    model = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0)
    with warnings.catch_warnings():  # 97 % right on the test split: converged enough
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        model.fit(pixels(train), train[target])
    onnx_model = convert_sklearn(
        model,
        initial_types=[(f"image_{FEATURE.name}", FloatTensorType([None, FEATURE.size]))],
        options={id(model): {"zipmap": False}},
        target_opset=SIGNATURE.opset,
    )
    onnx_bytes = onnx_model.SerializeToString()
    test_pixels = pixels(test)
    served = OnnxModel(onnx_bytes, SIGNATURE, onnx_inputs([FEATURE]))
    _, probabilities = served.predict([(row,) for row in test_pixels])
    difference = float(np.abs(probabilities - model.predict_proba(test_pixels)).max())
    metadata = BundleMetadata(
        created_at="2026-01-01T00:00:00+00:00",
        identity=ModelIdentity(
            registered_model="monitored_digits",
            version=version,
            run_id="test-run",
            sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        ),
        data_sha256="d" * 64,
        target=target,
        classes=[str(label) for label in model.classes_],
        features=[FEATURE],
        onnx=SIGNATURE,
        metrics={"accuracy": float(model.score(test_pixels, test[target]))},
        parity=Parity(rows=len(test), max_probability_difference=difference, tolerance=1e-4),
        libraries={},
    )
    write(folder / "bundle", onnx_bytes, metadata)
    return DigitsBundle(folder / "bundle", metadata, train_file, test_file)
