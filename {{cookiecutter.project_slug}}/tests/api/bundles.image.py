"""The bundle the prediction-service tests of an image model serve, and its fixture (imported by
conftest.py).

`api_bundle` is a small image bundle (tests/digits_bundle.py: scikit-learn's 8 x 8 digits written
as PNG files, an MLP converted to ONNX as the pipeline's export converts one) with its test
split's pictures, so the service is tested on files of the kind a team uploads, whatever the
project's own data holds.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from digits_bundle import digits_bundle
from urllib3 import encode_multipart_formdata

from {{ cookiecutter.module_name }} import (
    images,
)
from {{ cookiecutter.module_name }}.bundle import (
    read_verified,
)
from {{ cookiecutter.module_name }}.inference import (
    load,
)

MODEL_VERSION = 3


@dataclass(frozen=True)
class ApiBundle:
    directory: Path
    examples_file: Path
    classes: list[str]
    pictures: list[Path]  # PNG files of the test split
    labels: list[str]  # the model's labels of `pictures`, read as the pipeline reads them
    registered_model: str
    model_version: int = MODEL_VERSION

    def upload(self, index: int = 0) -> tuple[str, bytes, str]:
        """The `index`-th picture as a multipart file: (file name, bytes, media type)."""
        path = self.pictures[index]
        return path.name, path.read_bytes(), "image/png"

    def rows(self) -> list[tuple[Any, ...]]:
        """The pictures as the model's rows: `(pixels,)`, read as the pipeline reads them."""
        feature = read_verified(self.directory).image_feature
        return [(images.load_pixels(path, feature),) for path in self.pictures]

    def single(self, index: int = 0) -> dict[str, Any]:
        """The arguments of a test client's POST to /predict of the `index`-th picture."""
        return {"files": {"image": self.upload(index)}}

    def same_again(self, index: int = 0) -> dict[str, Any]:
        """The `index`-th picture sent differently (other PNG bytes), same pixels."""
        name, data, media = self.upload(index)
        buffer = io.BytesIO()
        images.decode(data).save(buffer, format="PNG", compress_level=0)
        assert buffer.getvalue() != data
        return {"files": {"image": (name, buffer.getvalue(), media)}}

    def body(self, index: int = 0) -> tuple[bytes, str]:
        """The body of a POST to /predict of the `index`-th picture, and its content type."""
        return encode_multipart_formdata({"image": self.upload(index)})

    def several(self, indexes: list[int]) -> dict[str, Any]:
        """The arguments of a POST to /predict/batch of those pictures."""
        return {"files": [("images", self.upload(index)) for index in indexes]}

    def refused(self) -> tuple[tuple[bytes, str], int]:
        """A body /predict refuses, and its status: a text file where a picture goes (415)."""
        text_file = ("notes.txt", b"not a picture", "text/plain")
        return encode_multipart_formdata({"image": text_file}), 415

    @property
    def ranges(self) -> dict[str, tuple[float, float]]:
        """None: a picture has no numeric feature to send out of its range."""
        return {}

    @property
    def features(self) -> list[str]:
        """The model's one feature, the picture."""
        return ["image"]

    @property
    def numeric(self) -> list[str]:
        """None: a test that needs a numeric feature skips itself on an image model."""
        pytest.skip("the model has no numeric feature: it reads a picture")


@pytest.fixture(scope="session")
def api_bundle(tmp_path_factory: pytest.TempPathFactory) -> ApiBundle:
    made = digits_bundle(tmp_path_factory.mktemp("api"), "digit", version=MODEL_VERSION)
    test = pd.read_csv(made.test_file, dtype=str)
    pictures = [Path(path) for path in test["image"][:20]]
    metadata, model = load(made.directory)
    feature = metadata.image_feature
    labels, _ = model.predict([(images.load_pixels(path, feature),) for path in pictures])
    return ApiBundle(
        directory=made.directory,
        examples_file=made.test_file,
        classes=metadata.classes,
        pictures=pictures,
        labels=labels,
        registered_model=metadata.identity.registered_model,
    )
