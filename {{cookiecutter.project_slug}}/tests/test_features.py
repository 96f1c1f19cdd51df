"""Stage `features`: deduplicated, stratified, reproducible splits."""

import pandas as pd
import pytest

from {{ cookiecutter.module_name }}.dataset import (
    builtin_dataset,
)
from {{ cookiecutter.module_name }}.features import (
    split,
)
from {{ cookiecutter.module_name }}.params import (
    FeaturesParams,
)


def settings(test_size: float = 0.2, random_state: int = 42) -> FeaturesParams:
    return FeaturesParams(test_size=test_size, random_state=random_state)


@pytest.fixture(scope="module")
def frame():
    return builtin_dataset("diagnosis")


def test_split_sizes_and_no_shared_rows(frame):
    train, test = split(frame, "diagnosis", settings())
    assert len(train) + len(test) == len(frame.drop_duplicates())
    assert len(test) == pytest.approx(0.2 * len(frame), abs=1)
    shared = train.merge(test, how="inner", on=list(frame.columns))
    assert shared.empty


def test_split_keeps_label_proportions(frame):
    train, test = split(frame, "diagnosis", settings())
    overall = frame["diagnosis"].value_counts(normalize=True)
    for part in (train, test):
        share = part["diagnosis"].value_counts(normalize=True)
        assert share["malignant"] == pytest.approx(overall["malignant"], abs=0.02)


def test_split_is_reproducible_and_seed_dependent(frame):
    first, _ = split(frame, "diagnosis", settings(random_state=1))
    again, _ = split(frame, "diagnosis", settings(random_state=1))
    other, _ = split(frame, "diagnosis", settings(random_state=2))
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


def test_duplicates_never_straddle_the_split(frame):
    doubled = pd.concat([frame, frame.head(50)], ignore_index=True)
    train, test = split(doubled, "diagnosis", settings())
    assert len(train) + len(test) == len(frame)
