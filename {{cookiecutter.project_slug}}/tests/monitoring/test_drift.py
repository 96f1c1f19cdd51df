"""`make drift`: drift found on shifted data, not on data drawn like the reference; its reports,
its exit status, and drift.json as the service reads it.

Evidently runs for real (about 10 s to import, then about a second per report).
"""

from __future__ import annotations

import contextlib
import csv
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import yaml
from monitored import run_drift

from {{ cookiecutter.module_name }}.inference import (
    load,
)
from {{ cookiecutter.module_name }}.modeling.splits import (
    features_and_labels,
)
from {{ cookiecutter.module_name }}.monitoring.store import (
    LoggedModel,
    PredictionWriter,
)
from {{ cookiecutter.module_name }}.monitoring.summary import (
    read_summary,
)
from {{ cookiecutter.module_name }}.monitoring.traffic import (
    GROUND_TRUTH_COLUMNS,
    Inputs,
)
from {{ cookiecutter.module_name }}.monitoring.traffic import (
    shifted as shift_record,
)

SHIFT = 1.5


def typed(monitored, frame: pd.DataFrame) -> pd.DataFrame:
    """The model's features of `frame`: numbers for numeric ones, strings for the others."""
    columns = {f.name: f.kind for f in monitored.metadata.features}
    return features_and_labels(frame, monitored.target, columns)[0]


def shifted(monitored, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows shifted as `make simulate-traffic` shifts them (traffic.shifted), with SHIFT."""
    inputs = Inputs.of(monitored.metadata.model_dump())
    moved = [
        shift_record(record, inputs, SHIFT) for record in typed(monitored, frame).to_dict("records")
    ]
    return pd.DataFrame(moved).assign(**{monitored.target: frame[monitored.target].to_numpy()})


def shifted_features(monitored) -> set[str]:
    """The features `shifted` moves: every other numeric and category one, and every text."""
    features = monitored.metadata.features
    kinds = ("numeric", "category")
    moved = {f.name for kind in kinds for f in [f for f in features if f.kind == kind][::2]}
    return moved | {f.name for f in features if f.kind == "text"}


def text_measures(monitored) -> set[str]:
    """What drift.json reports beside the features: each text's length in characters and words."""
    texts = [f.name for f in monitored.metadata.features if f.kind == "text"]
    return {f"{name}: {measure}" for name in texts for measure in ("characters", "words")}


def test_no_drift_on_data_drawn_like_the_reference(monitored, tmp_path):
    # The test split comes from the same data as the training split, by a stratified split.
    result = run_drift(monitored, tmp_path, "--current", str(monitored.test_file))
    assert result.exit_code == 0, result.output
    summary = read_summary(tmp_path / "drift.json")
    assert not summary.dataset_drift
    assert summary.drift_share < monitored.params.drift.drift_share
    assert set(summary.features) == set(monitored.features)
    assert set(summary.text_measures) == text_measures(monitored)
    assert summary.current_rows == len(monitored.test_split())
    # The current rows are the test split itself: the same accuracy as the reference's.
    assert summary.quality is not None
    assert summary.quality.accuracy == summary.quality.reference_accuracy
    for report in ("data_drift.html", "data_drift.json", "quality.html", "quality.json"):
        assert (tmp_path / report).stat().st_size > 0
    assert "no drift of the data" in result.output


def test_drift_found_on_shifted_data_exits_1(monitored, tmp_path):
    current = tmp_path / "current.csv"
    rows = shifted(monitored, monitored.test_split())
    rows.to_csv(current, index=False)
    result = run_drift(monitored, tmp_path, "--current", str(current))
    assert result.exit_code == 1, result.output
    summary = read_summary(tmp_path / "drift.json")
    assert summary.dataset_drift
    assert summary.drift_share >= monitored.params.drift.drift_share
    assert set(summary.drifted_features) >= shifted_features(monitored)  # each one is found
    # Words appended to every text: longer in characters and in words (none without a text).
    assert set(summary.text_measures) == text_measures(monitored)
    assert all(measure.drifted for measure in summary.text_measures.values())
    # The quality report scores the served model on the shifted rows and their true labels.
    _, model = load(monitored.bundle_dir)
    predicted, _ = model.predict(list(typed(monitored, rows).itertuples(index=False, name=None)))
    truth = rows[monitored.target].astype(str).to_numpy()
    assert summary.quality is not None and summary.quality.labelled_rows == len(rows)
    assert summary.quality.accuracy == pytest.approx((truth == predicted).mean())
    assert "THE DATA HAS DRIFTED" in result.output


@pytest.mark.slow
def test_verdicts_follow_the_configured_test(monitored, tmp_path):
    numeric = [f.name for f in monitored.metadata.features if f.kind == "numeric"]
    if not numeric:
        pytest.skip("the configured data has no numeric feature (the setting is for numbers)")
    # The normed Wasserstein distance of two samples of this size is about 0.1 by chance alone.
    monitored.write_params(method="wasserstein", threshold=0.3)
    try:
        result = run_drift(monitored, tmp_path, "--current", str(monitored.test_file))
    finally:
        monitored.write_params()
    assert result.exit_code == 0, result.output
    features = read_summary(tmp_path / "drift.json").features
    tests = {(features[name].method, features[name].threshold) for name in numeric}
    assert tests == {("wasserstein", 0.3)}  # category and text features keep their own tests


def write_log(monitored, path: Path, rows: pd.DataFrame) -> Path:
    """A prediction log at `path` of model version 2 predicting the last class for each of
    `rows` (request ids r<index>)."""
    metadata = monitored.metadata
    numeric = sum(f.kind == "numeric" for f in metadata.features)
    model = LoggedModel(2, tuple(metadata.feature_names), tuple(metadata.classes), numeric)
    writer = PredictionWriter(path, model)
    writer.start()
    probabilities = tuple(1.0 if c == metadata.classes[-1] else 0.0 for c in metadata.classes)
    for index, values in zip(
        rows.index, typed(monitored, rows).itertuples(index=False), strict=True
    ):
        writer.submit(f"r{index}", [(tuple(values), metadata.classes[-1], probabilities)])
    writer.close()
    return path


def test_the_prediction_log_and_its_ground_truth_are_compared(monitored, tmp_path):
    rows = shifted(monitored, monitored.test_split())
    write_log(monitored, tmp_path / "predictions.sqlite", rows)
    with (tmp_path / "ground_truth.csv").open("w", newline="") as handle:
        labels = csv.writer(handle)
        labels.writerow(GROUND_TRUTH_COLUMNS)
        labels.writerows((f"r{i}", 0, row[monitored.target]) for i, row in rows.iterrows())
    result = run_drift(monitored, tmp_path)
    assert result.exit_code == 1, result.output
    summary = read_summary(tmp_path / "drift.json")
    assert summary.current_source.startswith("prediction log:")
    assert summary.current_rows == len(rows)
    assert summary.model_versions == [2]
    assert summary.quality is not None and summary.quality.labelled_rows == len(rows)
    share = (rows[monitored.target].astype(str) == monitored.metadata.classes[-1]).mean()
    assert summary.quality.accuracy == pytest.approx(share)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("nothing", "no prediction log at"),
        ("few", "too few for a verdict"),
        ("no-section", "has no `drift` section"),
        ("not-a-log", "cannot read the prediction log"),
        ("other-format", "is not in the format this version writes"),
    ],
)
def test_too_little_or_an_unreadable_log_is_said_in_one_line(monitored, tmp_path, setup, message):
    args = []
    if setup == "few":
        few = tmp_path / "few.csv"
        monitored.test_split().head(monitored.params.drift.min_rows - 1).to_csv(few, index=False)
        args = ["--current", str(few)]
    if setup == "no-section":  # a params.yaml from before monitoring was added
        document = yaml.safe_load(monitored.params_file.read_text())
        del document["drift"]
        params_file = tmp_path / "params.yaml"
        params_file.write_text(yaml.safe_dump(document))
        args = ["--params-file", str(params_file)]
    if setup == "not-a-log":  # damaged, or another file where the log should be
        (tmp_path / "predictions.sqlite").write_bytes(b"not SQLite " * 1000)
    if setup == "other-format":  # inputs as text, as an earlier version wrote them
        log = write_log(monitored, tmp_path / "predictions.sqlite", monitored.test_split())
        with contextlib.closing(sqlite3.connect(log)) as connection, connection:
            connection.execute("UPDATE predictions SET inputs = hex(inputs)")
    result = run_drift(monitored, tmp_path, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "drift.json").exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [("empty", "has no values: fill it in"), ("text", "which is not a number")],
)
def test_current_data_a_feature_cannot_be_compared_on_is_said_in_one_line(
    monitored, tmp_path, damage, message
):
    numeric = [f.name for f in monitored.metadata.features if f.kind == "numeric"]
    if not numeric:
        pytest.skip("the configured data has no numeric feature")
    frame = monitored.test_split()
    frame[numeric[0]] = "" if damage == "empty" else ["not a number", *frame[numeric[0]][1:]]
    frame.to_csv(tmp_path / "current.csv", index=False)
    result = run_drift(monitored, tmp_path, "--current", str(tmp_path / "current.csv"))
    assert result.exit_code == 1
    assert f"'{numeric[0]}'" in result.output and message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "drift.json").exists()


def test_true_labels_the_model_does_not_know_are_left_out_of_the_quality_report(
    monitored, tmp_path
):
    frame = monitored.test_split()
    unknown = frame.index % 4 == 0
    frame.loc[unknown, monitored.target] = "a class nobody trained on"
    frame.to_csv(tmp_path / "current.csv", index=False)
    result = run_drift(monitored, tmp_path, "--current", str(tmp_path / "current.csv"))
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    assert f"{unknown.sum()} labelled rows have a true label the model does not know" in (
        result.output
    )
    quality = read_summary(tmp_path / "drift.json").quality
    if len(frame) - unknown.sum() >= monitored.params.drift.min_rows:
        assert quality is not None and quality.labelled_rows == len(frame) - unknown.sum()
    else:
        assert quality is None
