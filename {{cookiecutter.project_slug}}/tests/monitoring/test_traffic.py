"""`make simulate-traffic`, then `make drift`, against a real service: the drift and the fall in
accuracy of the shifted traffic are found, and the service counted what it was sent.
"""

from __future__ import annotations

import csv
import os
import random
import time
import urllib.request

import pytest
from served import Served
from typer.testing import CliRunner

from {{ cookiecutter.module_name }}.monitoring import (
    drift,
    traffic,
)
from {{ cookiecutter.module_name }}.monitoring.store import (
    read_recent,
)
from {{ cookiecutter.module_name }}.monitoring.summary import (
    read_summary,
)

INPUTS = traffic.Inputs(
    numeric={"a": (0.0, 10.0), "b": (0.0, 10.0), "c": (-5.0, 5.0)},
    categories={"site": ["north", "south"], "shop": ["x", "y"]},
    texts=["note"],
)
RECORD = {"a": 8.0, "b": 8.0, "c": -4.0, "site": "north", "shop": "x", "note": "fine"}


def test_shifted_records_stay_inside_the_training_range():
    assert traffic.shifted(RECORD, INPUTS, 1.5) == {
        "a": 10.0,
        "b": 8.0,
        "c": -5.0,
        "site": "south",  # every other category: its last value
        "shop": "x",
        "note": "fine" + traffic.SHIFTED_TEXT,
    }
    rejected = traffic.out_of_range(RECORD, INPUTS, random.Random(0))
    assert sum(rejected[name] > INPUTS.numeric[name][1] for name in INPUTS.numeric) == 1


def test_records_are_read_by_the_kind_of_each_feature():
    model = {
        "features": [
            {"kind": "numeric", "name": "a", "min": 0, "max": 1},
            {"kind": "category", "name": "site", "categories": ["n"]},
            {"kind": "text", "name": "note", "max_length": 9},
        ]
    }
    inputs = traffic.Inputs.of(model)
    row = {"a": "0.5", "site": "007", "note": "", "label": "yes"}
    assert inputs.record(row) == {"a": 0.5, "site": "007", "note": ""}


@pytest.fixture
def service(monitored, tmp_path):
    """The monitored model served by uvicorn on a free loopback port; its URL."""
    env = {
        **os.environ,
        "API_BUNDLE_DIR": str(monitored.bundle_dir),
        "API_EXAMPLES_FILE": str(monitored.test_file),
        "API_PREDICTION_LOG_PATH": str(tmp_path / "predictions.sqlite"),
        "API_METRICS_DRIFT_SUMMARY": str(tmp_path / "drift.json"),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = Served(env, tmp_path / "uvicorn.log")
    try:
        server.wait()
        yield server.url()
    finally:
        server.stop()


@pytest.mark.slow
def test_simulated_traffic_shows_drift_and_a_fall_in_accuracy(monitored, service, tmp_path):
    ground_truth = tmp_path / "ground_truth.csv"
    sent = CliRunner().invoke(
        traffic.app,
        [
            "--url", service, "--normal", "150", "--shifted", "150", "--out-of-range", "3",
            "--rate", "0", "--data", str(monitored.train_file), "--data", str(monitored.test_file),
            "--ground-truth", str(ground_truth),
        ],
    )  # fmt: skip
    assert sent.exit_code == 0, sent.output
    assert "out of range: 0 answered" in sent.output
    with ground_truth.open() as handle:
        labelled = list(csv.DictReader(handle))
    # A few rows of the data may be out of range themselves; the out-of-range phase, none.
    assert 285 <= len(labelled) <= 300
    with urllib.request.urlopen(f"{service}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    if any(f.kind == "numeric" for f in monitored.metadata.features):  # else none to push out
        assert 'route="/predict",status="422"' in metrics

    log = tmp_path / "predictions.sqlite"
    deadline = time.monotonic() + 10
    # The service writes in the background, about once a second: the file may not exist yet.
    while not log.exists() or len(read_recent(log, 1000)) < len(labelled):
        assert time.monotonic() < deadline, "the prediction log did not catch up"
        time.sleep(0.1)
    monitored.write_params(window=150)  # the shifted traffic only
    try:
        result = CliRunner().invoke(
            drift.app,
            [
                "--log", str(log), "--ground-truth", str(ground_truth),
                "--reference", str(monitored.train_file), "--test-file", str(monitored.test_file),
                "--bundle-dir", str(monitored.bundle_dir), "--output-dir", str(tmp_path / "drift"),
                "--params-file", str(monitored.params_file),
            ],
        )  # fmt: skip
    finally:
        monitored.write_params()
    assert result.exit_code == 1, result.output
    summary = read_summary(tmp_path / "drift" / "drift.json")
    assert summary.dataset_drift
    # Every logged prediction has its true label, written as its answer came.
    assert summary.quality is not None and summary.quality.labelled_rows == 150
    assert (tmp_path / "drift" / "quality.html").is_file()
