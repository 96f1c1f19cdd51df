"""Metrics and the prediction log under a real uvicorn, with one worker and with two.

With two workers, PROMETHEUS_MULTIPROC_DIR is an empty folder made before the start, as in a
container: /metrics must add up the counts of both workers, whichever answers the scrape, and
both workers append to the one prediction log. A restart keeps the log and adds to it.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from served import Served

from {{ cookiecutter.module_name }}.monitoring.store import (
    read_recent,
)

pytestmark = pytest.mark.slow

REQUESTS = 40


def samples(server: Served) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(server.url("/metrics"), timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def answered_by_worker(multiprocess_dir: Path, workers: int) -> list[float]:
    """/predict requests each worker counted, from its own file in the multiprocess folder."""
    counts = [
        sum(
            sample.value
            for metric in MultiProcessCollector.merge([str(path)])
            for sample in metric.samples
            if sample.name == "http_requests_total" and sample.labels["route"] == "/predict"
        )
        for path in sorted(multiprocess_dir.glob("counter_*.db"))
    ]
    return counts + [0.0] * (workers - len(counts))


def environment(api_bundle, tmp_path: Path, multiprocess_dir: Path | None) -> dict[str, str]:
    env = {
        **os.environ,
        "API_BUNDLE_DIR": str(api_bundle.directory),
        "API_EXAMPLES_FILE": str(api_bundle.examples_file),
        "API_PREDICTION_LOG_PATH": str(tmp_path / "predictions.sqlite"),
        "API_METRICS_DRIFT_SUMMARY": str(tmp_path / "drift.json"),
        "API_CACHE_URL": "",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if multiprocess_dir is not None:
        multiprocess_dir.mkdir()  # empty, before the start
        env["PROMETHEUS_MULTIPROC_DIR"] = str(multiprocess_dir)
    return env


@pytest.mark.parametrize("workers", [1, 2])
def test_exact_metrics_and_one_log_with_one_and_two_workers(api_bundle, tmp_path, workers):
    multiprocess_dir = tmp_path / "prometheus" if workers > 1 else None
    env = environment(api_bundle, tmp_path, multiprocess_dir)
    server = Served(env, tmp_path / "uvicorn.log", workers=workers)
    try:
        server.wait(in_a_row=10)  # with two workers, likely both started
        before = samples(server)
        bodies = [api_bundle.body(i % len(api_bundle.labels)) for i in range(REQUESTS)]
        rejected, refusal = api_bundle.refused()  # 422 for a record, 415 for a text file
        with ThreadPoolExecutor(max_workers=8) as pool:  # concurrent: both workers get some
            statuses = [status for status, _ in pool.map(server.send, bodies + [rejected] * 3)]
            # The kernel hands each connection to whichever worker accepts first: one worker
            # may take a whole round. More rounds, a bounded number, until each has answered.
            for _ in range(20):
                if multiprocess_dir is None or all(answered_by_worker(multiprocess_dir, workers)):
                    break
                statuses += [status for status, _ in pool.map(server.send, bodies)]
        accepted = len(statuses) - 3
        assert statuses == [200] * REQUESTS + [refusal] * 3 + [200] * (accepted - REQUESTS)
        after = samples(server)
        deadline = time.monotonic() + 10
        while value(after, "prediction_log_records_total") != accepted:
            assert time.monotonic() < deadline, "the prediction log did not catch up"
            time.sleep(0.2)
            after = samples(server)
    finally:
        log = server.stop()
    assert "Traceback" not in log, log

    def counted(name: str, **labels: str) -> float:
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert counted("http_requests_total", route="/predict", method="POST", status="200") == accepted
    assert counted("http_requests_total", route="/predict", method="POST", status=str(refusal)) == 3
    answered = counted("http_request_duration_seconds_count", route="/predict", method="POST")
    assert answered == accepted + 3
    assert counted("model_inference_duration_seconds_count") == accepted
    classes = api_bundle.classes
    assert sum(counted("model_predictions_total", **{"class": c}) for c in classes) == accepted
    if api_bundle.ranges:  # the refused record's first numeric feature was out of its range
        feature = next(iter(api_bundle.ranges))
        assert counted("model_input_out_of_range_total", feature=feature) == 3
    identity = [labels for (name, labels) in after if name == "model_info"]
    assert len(identity) == 1 and dict(identity[0])["version"] == str(api_bundle.model_version)
    assert len(read_recent(tmp_path / "predictions.sqlite", 1000)) == accepted
    if multiprocess_dir is not None:
        # Each worker answered some: the totals above are sums, not one worker's counts.
        per_worker = answered_by_worker(multiprocess_dir, workers)
        assert all(per_worker) and sum(per_worker) == accepted + 3

    # A restart (a new container: an empty metrics folder) adds to the same log.
    restarted_dir = tmp_path / "prometheus-2" if workers > 1 else None
    env = environment(api_bundle, tmp_path, restarted_dir)
    server = Served(env, tmp_path / "uvicorn-restarted.log", workers=workers)
    try:
        server.wait(in_a_row=10)
        assert [server.send(api_bundle.body(index))[0] for index in range(5)] == [200] * 5
    finally:
        server.stop()
    assert len(read_recent(tmp_path / "predictions.sqlite", 1000)) == accepted + 5
