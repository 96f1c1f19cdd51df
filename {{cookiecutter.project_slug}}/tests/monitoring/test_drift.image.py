"""`make drift` for an image model: the pictures' measures compared with the training split's
(value drift of size, brightness and contrast, EmbeddingsDrift of the thumbnails); drift found on
washed-out, larger pictures, not on pictures drawn like the reference; the prediction log of
measures with its ground truth; one line for what cannot be judged.

Evidently runs for real (about 10 s to import, then a few seconds per report).
"""

from __future__ import annotations

import contextlib
import csv
import math
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from monitored import run_drift
from PIL import Image

from {{ cookiecutter.module_name }} import (
    images,
)
from {{ cookiecutter.module_name }}.inference import (
    load,
)
from {{ cookiecutter.module_name }}.monitoring import (
    pictures,
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
)

SHIFT = 1.5


def shifted_manifest(monitored, folder: Path) -> pd.DataFrame:
    """The test split's pictures shifted as `make simulate-traffic` shifts them, in `folder`."""
    folder.mkdir()
    frame = monitored.test_split()
    paths = []
    for source in frame["image"]:
        path = folder / Path(source).name
        path.write_bytes(pictures.shifted(Path(source).read_bytes(), SHIFT))
        paths.append(str(path))
    return frame.assign(image=paths)


def write_log(monitored, path: Path, frame: pd.DataFrame, measures=images.measures) -> Path:
    """A prediction log at `path` of model version 2, as the service writes it: the measures of
    each picture of `frame` (request ids r<index>), each predicted as the last class."""
    metadata = monitored.metadata
    writer = PredictionWriter(path, LoggedModel.of(metadata))
    writer.start()
    label = metadata.classes[-1]
    probabilities = tuple(1.0 if c == label else 0.0 for c in metadata.classes)
    for index, source in zip(frame.index, frame["image"], strict=True):
        measured = measures(images.decode(Path(source).read_bytes()))
        writer.submit(f"r{index}", [(tuple(measured.values()), label, probabilities)])
    writer.close()
    return path


def test_the_log_keeps_the_measures_in_the_order_images_gives_them():
    assert tuple(images.measures(Image.new("RGB", (3, 5)))) == pictures.MEASURES


def test_no_drift_on_pictures_drawn_like_the_reference(monitored, tmp_path):
    # The test split comes from the same pictures as the training split, by a stratified split.
    result = run_drift(monitored, tmp_path, "--current", str(monitored.test_file))
    assert result.exit_code == 0, result.output
    summary = read_summary(tmp_path / "drift.json")
    assert not summary.dataset_drift
    assert set(summary.features) == set(pictures.COMPARED)
    assert summary.text_measures == {}
    assert summary.current_rows == len(monitored.test_split())
    assert summary.features["thumbnail"].method == "classifier ROC AUC"
    assert summary.quality is not None
    assert summary.quality.accuracy == summary.quality.reference_accuracy
    for report in ("data_drift.html", "data_drift.json", "quality.html", "quality.json"):
        assert (tmp_path / report).stat().st_size > 0
    assert "no drift of the data" in result.output


def test_drift_found_on_shifted_pictures_exits_1(monitored, tmp_path):
    shifted = shifted_manifest(monitored, tmp_path / "shifted")
    shifted.to_csv(tmp_path / "current.csv", index=False)
    result = run_drift(monitored, tmp_path, "--current", str(tmp_path / "current.csv"))
    assert result.exit_code == 1, result.output
    summary = read_summary(tmp_path / "drift.json")
    assert summary.dataset_drift
    # Larger, greyer and flatter: every measure moved, and the thumbnails with them.
    assert set(summary.drifted_features) == set(pictures.COMPARED)
    assert summary.drift_share == 1.0
    assert summary.features["thumbnail"].score > pictures.EMBEDDING_THRESHOLD
    # The quality report scores the served model on the shifted pictures.
    _, model = load(monitored.bundle_dir)
    feature = monitored.metadata.image_feature
    rows = [(images.load_pixels(Path(p), feature),) for p in shifted["image"]]
    predicted, _ = model.predict(rows)
    truth = shifted[monitored.target].to_numpy()
    assert summary.quality is not None and summary.quality.labelled_rows == len(shifted)
    assert summary.quality.accuracy == pytest.approx((truth == predicted).mean())
    assert "THE DATA HAS DRIFTED" in result.output


def test_the_prediction_log_of_measures_and_its_ground_truth_are_compared(monitored, tmp_path):
    shifted = shifted_manifest(monitored, tmp_path / "shifted")
    write_log(monitored, tmp_path / "predictions.sqlite", shifted)
    with (tmp_path / "ground_truth.csv").open("w", newline="") as handle:
        labels = csv.writer(handle)
        labels.writerow(GROUND_TRUTH_COLUMNS)
        labels.writerows((f"r{i}", 0, label) for i, label in shifted[monitored.target].items())
    result = run_drift(monitored, tmp_path)
    assert result.exit_code == 1, result.output
    summary = read_summary(tmp_path / "drift.json")
    assert summary.current_source.startswith("prediction log:")
    assert summary.current_rows == len(shifted)
    assert summary.model_versions == [2]
    assert "width" in summary.drifted_features and "thumbnail" in summary.drifted_features
    assert summary.quality is not None and summary.quality.labelled_rows == len(shifted)
    share = (shifted[monitored.target] == monitored.metadata.classes[-1]).mean()
    assert summary.quality.accuracy == pytest.approx(share)


def no_brightness(picture) -> dict[str, float]:
    return {**images.measures(picture), "brightness": math.nan}


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("nothing", "no prediction log at"),
        ("few", "too few for a verdict"),
        ("not-a-log", "cannot read the prediction log"),
        ("nan", "rows have no number in 'brightness'"),
        ("other-format", "is not in the format this version writes"),
        ("missing-picture", "cannot read"),
        ("not-a-picture", "not a PNG or JPEG image"),
        ("no-image-column", "has no 'image' column of picture paths"),
    ],
)
def test_what_cannot_be_judged_is_said_in_one_line(monitored, tmp_path, setup, message):
    args: list[str] = []
    frame = monitored.test_split()
    log = tmp_path / "predictions.sqlite"
    current = tmp_path / "current.csv"
    if setup == "few":
        write_log(monitored, log, frame.head(monitored.params.drift.min_rows - 1))
    if setup == "not-a-log":  # damaged, or another file where the log should be
        log.write_bytes(b"not SQLite " * 1000)
    if setup == "nan":  # a log that holds no number where a picture always has one
        write_log(monitored, log, frame, measures=no_brightness)
    if setup == "other-format":  # measures as text, as no version writes them
        write_log(monitored, log, frame)
        with contextlib.closing(sqlite3.connect(log)) as connection, connection:
            connection.execute("UPDATE predictions SET inputs = hex(inputs)")
    if setup.endswith("picture"):
        broken = tmp_path / "broken.png"
        if setup == "not-a-picture":
            broken.write_text("a text file named .png")
        frame.assign(image=[str(broken), *frame["image"][1:]]).to_csv(current, index=False)
        args = ["--current", str(current)]
    if setup == "no-image-column":
        frame.drop(columns="image").to_csv(current, index=False)
        args = ["--current", str(current)]
    result = run_drift(monitored, tmp_path, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "drift.json").exists()
