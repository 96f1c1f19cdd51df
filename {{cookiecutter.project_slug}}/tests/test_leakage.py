"""The leakage check of `validate`: a column that predicts the target by itself stops the stage,
an easy problem does not.

The configured data must pass, and the same data with the label hidden in one of its columns
(inside the column's usual range, where the suite sees nothing wrong) must not. Easy problems
whose models are perfect without any leakage (scikit-learn's wine and iris sets) pass, which is
why the check looks at single columns rather than at a perfect model.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris, load_wine
from tables import manifest_frame, mixed_frame, raw_frame

from {{ cookiecutter.module_name }}.leakage import (
    LEAKY_SCORE,
    LeakageError,
    check,
    column_scores,
)
from {{ cookiecutter.module_name }}.params import (
    DataParams,
    load_params,
)


def allowing(data: DataParams, *columns: str, **kinds: str) -> DataParams:
    """`data` with `columns` in allow_leaky_features and `kinds` added to its columns."""
    return data.model_copy(
        update={
            "allow_leaky_features": [*data.allow_leaky_features, *columns],
            "columns": {**data.columns, **kinds},
        }
    )


def hide_the_label(frame: pd.DataFrame, target: str, column: str) -> pd.DataFrame:
    """`frame` with `column` rewritten from the label: each class gets its own band of the
    column's usual range, so every value stays one the suite has seen."""
    low, high = frame[column].min(), frame[column].max()
    classes = sorted(frame[target].astype(str).unique())
    edges = np.linspace(low, high, len(classes) + 1)
    rng = np.random.default_rng(0)
    band = frame[target].astype(str).map({name: i for i, name in enumerate(classes)})
    width = (high - low) / len(classes)
    leaked = frame.copy()
    leaked[column] = edges[band] + rng.uniform(0.1, 0.9, len(frame)) * width
    return leaked


@pytest.fixture(scope="module")
def configured():
    data = load_params().data
    frame = raw_frame()
    numeric = [
        name
        for name in frame.columns
        if name != data.target
        and data.columns.get(name, "numeric") == "numeric"
        and pd.api.types.is_numeric_dtype(frame[name])
    ]
    return frame, data, numeric


def test_the_configured_data_has_no_leaky_column(configured):
    frame, data, _numeric = configured
    line = check(frame, data)
    checked = [
        name
        for name in frame.columns
        if name != data.target and data.columns.get(name, "numeric") in ("numeric", "category")
    ]
    if not checked:  # texts only: a text alone may honestly tell its label
        assert line.startswith("no column to check for leakage")
    else:
        assert line.startswith(f"no single column predicts {data.target}: the best alone, ")


def test_the_label_hidden_in_a_column_stops_it_in_one_line(configured):
    frame, data, numeric = configured
    if not numeric:
        pytest.skip("the configured data has no numeric column to hide the label in")
    leaked = hide_the_label(frame, data.target, numeric[0])
    with pytest.raises(LeakageError) as raised:
        check(leaked, data)
    message = str(raised.value)
    assert message.startswith(f"{numeric[0]} (1.00) alone predicts {data.target} almost")
    assert "data.allow_leaky_features" in message and "\n" not in message


def test_an_allowed_or_ignored_column_passes_and_the_next_best_is_named(configured):
    frame, data, numeric = configured
    if not numeric:
        pytest.skip("the configured data has no numeric column to hide the label in")
    leaked = hide_the_label(frame, data.target, numeric[0])
    for settings in (allowing(data, numeric[0]), allowing(data, **{numeric[0]: "ignore"})):
        line = check(leaked, settings)
        assert line.startswith(f"no single column predicts {data.target}")
        assert f"the best alone, {numeric[0]}," not in line


def test_an_unknown_allowed_column_is_named():
    frame, data = mixed_frame()
    with pytest.raises(LeakageError, match=r"data\.allow_leaky_features names 'colour', not a"):
        check(frame, allowing(data, "colour"))


@pytest.mark.parametrize("loader", [load_wine, load_iris], ids=["wine", "iris"])
def test_easy_problems_are_not_leakage(loader):
    """A forest classifies these perfectly on their test splits, yet no column alone does."""
    frame = loader(as_frame=True).frame
    scores = column_scores(frame, "target", {})
    assert len(scores) == len(frame.columns) - 1
    assert 0.5 < scores[0].score < LEAKY_SCORE
    check(frame, DataParams(source="csv", target="target"))


def test_a_category_copying_the_label_or_a_row_number_sorted_by_class_is_leakage():
    frame, data = mixed_frame()
    frame["code"] = frame[data.target].map({"low": "L", "mid": "M", "high": "H"})
    ordered = frame.sort_values(data.target, kind="stable").reset_index(drop=True)
    ordered["row"] = range(len(ordered))
    settings = allowing(data, code="category")
    found = column_scores(ordered, data.target, settings.columns)
    scores = {item.column: item.score for item in found}
    assert scores["code"] >= LEAKY_SCORE and scores["row"] >= LEAKY_SCORE
    assert max(scores["reading"], scores["site"], scores["count"]) < LEAKY_SCORE
    with pytest.raises(LeakageError, match=r"^code \(1.00\), row \(0.99\) each alone predict band"):
        check(ordered, settings)


def test_text_columns_are_not_checked():
    """The made-up note names a word of its class: a text alone may honestly tell the label."""
    frame, data = mixed_frame()
    assert "note" not in {item.column for item in column_scores(frame, data.target, data.columns)}
    check(frame, data)


def test_a_pictures_path_is_not_leakage():
    """The folder in a picture's path is its label, by design: the model reads the pixels."""
    frame, data = manifest_frame()
    assert all(frame["image"].str.split("/").str[-2] == frame[data.target])
    assert column_scores(frame, data.target, data.columns) == []
    assert check(frame, data).startswith("no column to check for leakage")


def test_a_class_with_a_single_row_is_left_to_the_features_stage():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": ["a", "a", "a", "b"]})
    assert column_scores(frame, "y", {}) == []


def test_a_large_table_is_checked_on_a_sample_that_keeps_its_rare_class():
    rng = np.random.default_rng(0)
    labels = np.array(["common"] * 11_970 + ["rare"] * 30)
    frame = pd.DataFrame({"noise": rng.normal(size=len(labels)), "y": labels})
    frame["code"] = np.where(labels == "rare", 1.0, 0.0) + rng.uniform(0, 0.5, len(labels))
    scores = {item.column: item.score for item in column_scores(frame, "y", {})}
    assert scores["code"] == 1.0 and scores["noise"] < LEAKY_SCORE
