"""Facts of the built-in data (scikit-learn's breast-cancer set) and of a model trained on it.

Every other test follows the data configured in params.yaml; the checks here only hold for the
built-in set, so this file skips itself when `data.source` is not `builtin`. After `make
data-new`, write the same kind of checks for your own data here: behaviour the model must show
on it (an invariance, a direction), in the words of your problem.
"""

import numpy as np
import pytest
from tables import is_builtin, kinds, splits

from {{ cookiecutter.module_name }}.dataset import (
    load_source,
)
from {{ cookiecutter.module_name }}.modeling.splits import (
    features_and_labels,
)
from {{ cookiecutter.module_name }}.modeling.train import (
    build_model,
)
from {{ cookiecutter.module_name }}.params import (
    load_params,
)

pytestmark = pytest.mark.skipif(
    not is_builtin(),
    reason="checks facts of the built-in breast-cancer data; data.source in params.yaml is not "
    "builtin (write checks of your own data here)",
)

SIZE_FEATURES = [
    "mean_radius",
    "mean_perimeter",
    "mean_area",
    "worst_radius",
    "worst_perimeter",
    "worst_area",
]


@pytest.fixture(scope="module")
def model_and_test_features():
    params = load_params()
    train, test = splits(params)
    features, labels = features_and_labels(train, params.data.target, kinds())
    model = build_model(params.train, kinds()).fit(features, labels)
    return model, features_and_labels(test, params.data.target, kinds())[0]


def malignancy(model, features) -> np.ndarray:
    return model.predict_proba(features)[:, list(model.classes_).index("malignant")]


def test_default_dataset_needs_no_network_and_has_clean_columns():
    frame = load_source(load_params().data)
    assert frame.shape == (569, 31)
    assert "mean_radius" in frame.columns
    assert set(frame["diagnosis"]) == {"malignant", "benign"}
    assert frame["diagnosis"].value_counts()["malignant"] == 212


@pytest.mark.parametrize("factor", [0.999, 1.001])
def test_tiny_texture_change_keeps_every_prediction(model_and_test_features, factor):
    """Invariance: a 0.1% change of one measurement is noise, not a new diagnosis."""
    model, features = model_and_test_features
    nudged = features.assign(mean_texture=features["mean_texture"] * factor)
    np.testing.assert_array_equal(model.predict(nudged), model.predict(features))


def test_larger_tumours_look_more_malignant(model_and_test_features):
    """Direction: growing the size measurements of benign-looking tumours by half never lowers,
    and on average clearly raises, the probability of malignancy."""
    model, features = model_and_test_features
    benign_looking = features[model.predict(features) != "malignant"]
    assert len(benign_looking) > 10
    larger = benign_looking.copy()
    larger[SIZE_FEATURES] *= 1.5
    before = malignancy(model, benign_looking)
    after = malignancy(model, larger)
    assert np.all(after >= before)
    assert np.mean(after - before) > 0.1
