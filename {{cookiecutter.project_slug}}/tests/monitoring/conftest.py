"""Fixtures of the monitoring tests: a served model and its data, in a temporary folder.

`monitored` holds a bundle made the way the pipeline makes one (tests/small_bundle.py), without
MLflow, from the configured data, next to the train and test splits it was made from and a
params.yaml with the project's `drift` section, whose `min_rows` is lowered to the test split's
size when the data is small. The project's own data, models, reports and prediction log are
never touched.
"""

from __future__ import annotations

import pytest
from monitored import Monitored
from small_bundle import small_bundle


@pytest.fixture(scope="session")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Monitored:
    root = tmp_path_factory.mktemp("monitoring")
    made = small_bundle(root, "monitored_model", version=2, trees=20, metrics={"accuracy": 0.95})
    made.train_split.to_csv(root / "train.csv", index=False)
    made.test_split.to_csv(root / "test.csv", index=False)
    drift = made.params.drift
    assert drift is not None
    smaller = drift.model_copy(update={"min_rows": min(drift.min_rows, len(made.test_split))})
    monitored = Monitored(
        root=root,
        params=made.params.model_copy(update={"drift": smaller}),
        bundle_dir=made.directory,
        train_file=root / "train.csv",
        test_file=root / "test.csv",
        metadata=made.metadata,
    )
    monitored.write_params()
    return monitored
