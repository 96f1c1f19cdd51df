"""Fixtures of the monitoring tests of an image model: a served model and its pictures, in a
temporary folder.

`monitored` holds an image bundle (tests/digits_bundle.py: scikit-learn's 8 x 8 digits as PNG
files, an MLP converted to ONNX) next to the train and test manifests it was made from and a
params.yaml with the project's `drift` section, whose `min_rows` is lowered to 100. The
project's own data, models, reports and prediction log are never touched.
"""

from __future__ import annotations

import pytest
from digits_bundle import digits_bundle
from monitored import Monitored

from {{ cookiecutter.module_name }}.params import (
    load_params,
)


@pytest.fixture(scope="session")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Monitored:
    root = tmp_path_factory.mktemp("monitoring")
    params = load_params()
    made = digits_bundle(root, params.data.target)
    drift = params.drift
    assert drift is not None
    monitored = Monitored(
        root=root,
        params=params.model_copy(update={"drift": drift.model_copy(update={"min_rows": 100})}),
        bundle_dir=made.directory,
        train_file=made.train_file,
        test_file=made.test_file,
        metadata=made.metadata,
    )
    monitored.write_params()
    return monitored
