"""Stage `features`: deduplicated, stratified, reproducible splits of the configured data, and
one-line errors for data that cannot be split so."""

import re

import pandas as pd
import pytest
from tables import manifest_frame, raw_frame

from {{ cookiecutter.module_name }}.features import (
    SplitSizeError,
    check_splittable,
    split,
)
from {{ cookiecutter.module_name }}.params import (
    FeaturesParams,
    load_params,
)

TARGET = load_params().data.target


def settings(test_size: float = 0.2, random_state: int = 42) -> FeaturesParams:
    return FeaturesParams(test_size=test_size, random_state=random_state)


@pytest.fixture(scope="module")
def frame():
    return raw_frame()


def test_split_sizes_and_no_shared_rows(frame):
    unique = frame.drop_duplicates()
    train, test = split(frame, TARGET, settings())
    assert len(train) + len(test) == len(unique)
    assert len(test) == pytest.approx(0.2 * len(unique), abs=1)
    shared = train.merge(test, how="inner", on=list(frame.columns))
    assert shared.empty


def test_split_keeps_label_proportions(frame):
    train, test = split(frame, TARGET, settings())
    overall = frame[TARGET].value_counts(normalize=True)
    for part in (train, test):
        share = part[TARGET].value_counts(normalize=True)
        for label, expected in overall.items():
            # Stratified: off by at most one row of the part (and rounding).
            assert share.get(label, 0) == pytest.approx(expected, abs=1 / len(part) + 0.01)


def test_split_is_reproducible_and_seed_dependent(frame):
    first, _ = split(frame, TARGET, settings(random_state=1))
    again, _ = split(frame, TARGET, settings(random_state=1))
    other, _ = split(frame, TARGET, settings(random_state=2))
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


def test_duplicates_never_straddle_the_split(frame):
    doubled = pd.concat([frame, frame.head(50)], ignore_index=True)
    train, test = split(doubled, TARGET, settings())
    assert len(train) + len(test) == len(frame.drop_duplicates())


@pytest.mark.parametrize(
    ("labels", "test_size", "message"),
    [
        (["a"] * 10, 0.2, "holds one class ('a'): a classifier needs two or more"),
        (["a"] * 5 + ["b"] * 4 + ["c"], 0.2, "class 'c' of 'y' has a single row"),
        (["a", "b", "c", "d"] * 2, 0.2, "4 classes, but with features.test_size 0.2 the 8 rows"),
        (["a", None, "b", "a", "b"], 0.2, "1 rows have no value in the target column 'y'"),
    ],
)
def test_data_that_cannot_be_split_stratified_is_one_line(labels, test_size, message):
    frame = pd.DataFrame({"x": range(len(labels)), "y": labels})
    with pytest.raises(SplitSizeError, match=re.escape(message)):
        check_splittable(frame, "y", settings(test_size=test_size))


def test_the_same_picture_under_two_names_is_one_row():
    """A picture's path is left out of the duplicate check: a copy of a file under another name
    (same sha256, size and label) would otherwise sit in both sets."""
    frame, data = manifest_frame()
    copies = frame.head(10).assign(image=lambda f: f["image"].str.replace(".png", "-copy.png"))
    doubled = pd.concat([frame, copies], ignore_index=True)
    train, test = split(doubled, data.target, settings(), data.columns)
    assert len(train) + len(test) == len(frame)
    assert not set(train["sha256"]) & set(test["sha256"])
    assert sum(map(len, split(doubled, data.target, settings()))) == len(doubled)
