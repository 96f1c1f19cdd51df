"""The prediction log: what is written, the request ids, the switch, failures that never fail a
request (a held lock, a folder that cannot be written) but become a metric and one warning, a
full log that makes room by deleting its oldest rows, a log deleted or replaced while it is
written to, and writers that open a new log at the same moment. Several worker processes of a
real uvicorn writing at once: test_metrics_server.py.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.module_name }}.api.main import (
    create_app,
)
from {{ cookiecutter.module_name }}.monitoring.store import (
    ROWS_PER_INSERT,
    LoggedModel,
    PredictionWriter,
    UnreadableLogError,
    read_recent,
)

MODEL = LoggedModel(version=1, features=("x", "y", "z"), classes=("a", "b"))


@pytest.fixture
def log_path(tmp_path) -> Path:
    return tmp_path / "log" / "predictions.sqlite"


def logged_client(settings, log_path: Path, **log_settings: object) -> TestClient:
    """A client of the service logging to `log_path`, with these `prediction_log_*` settings."""
    update = {f"prediction_log_{name}": value for name, value in log_settings.items()}
    return TestClient(
        create_app(settings.model_copy(update={"prediction_log_path": log_path, **update}))
    )


def submit(writer: PredictionWriter, *indices: int) -> None:
    """One request for each index, with id `request-<index>`."""
    for index in indices:
        writer.submit(f"request-{index}", [((index, 1.5, -2.0), "a", (0.75, 0.25))])


def dropped(client: TestClient, reason: str) -> float:
    """prediction_log_dropped_records_total for `reason`, as /metrics says."""
    text = client.get("/metrics").text
    samples = [
        sample for family in text_string_to_metric_families(text) for sample in family.samples
    ]
    name = "prediction_log_dropped_records_total"
    found = [s.value for s in samples if s.name == name and s.labels == {"reason": reason}]
    return found[0] if found else 0.0


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.02)


def close_at_once(writers: list[PredictionWriter]) -> None:
    """Close the writers from one thread each, released together: they flush at once."""
    together = threading.Barrier(len(writers))

    def close(writer: PredictionWriter) -> None:
        together.wait()
        writer.close()

    closers = [threading.Thread(target=close, args=(writer,)) for writer in writers]
    for closer in closers:
        closer.start()
    for closer in closers:
        closer.join()


def test_each_answered_record_is_logged_with_its_request_id(api_settings, api_bundle, log_path):
    first = api_bundle.single(0)
    with logged_client(api_settings, log_path) as client:
        single = client.post("/predict", **first, headers={"X-Request-ID": "case-17"})
        batch = client.post("/predict/batch", **api_bundle.several([1, 2]))
        ignored = client.post("/predict", **first, headers={"X-Request-ID": "a b\x7f"})
    logged = read_recent(log_path, 10)
    assert single.headers["x-request-id"] == "case-17"
    assert [(p.request_id, p.position) for p in logged] == [
        ("case-17", 0),
        (batch.headers["x-request-id"], 0),
        (batch.headers["x-request-id"], 1),
        (ignored.headers["x-request-id"], 0),
    ]
    assert ignored.headers["x-request-id"] != "a b\x7f"  # not a token: a new id instead
    assert logged[0].label == single.json()["label"]
    assert dict(logged[0].probabilities) == single.json()["probabilities"]
    assert {p.model_version for p in logged} == {api_bundle.model_version}
{%- if cookiecutter.task != "image" %}


def test_records_are_logged_as_sent(api_settings, api_bundle, log_path):
    records = api_bundle.records[:3]
    with logged_client(api_settings, log_path) as client:
        assert client.post("/predict/batch", json={"records": records}).status_code == 200
    logged = read_recent(log_path, 10)
    assert [dict(p.inputs) for p in logged] == records  # the values sent, not float32 ones


def test_category_and_text_inputs_are_logged_as_sent(mixed_settings, mixed_bundle, log_path):
    records = mixed_bundle.records[:3]
    with logged_client(mixed_settings, log_path) as client:
        assert client.post("/predict/batch", json={"records": records}).status_code == 200
    logged = read_recent(log_path, 10)
    assert [dict(p.inputs) for p in logged] == records
    assert isinstance(logged[0].inputs["site"], str) and isinstance(logged[0].inputs["note"], str)
{%- endif %}


def test_a_log_of_an_earlier_format_is_never_appended_to(tmp_path):
    path = tmp_path / "old.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE models (version INTEGER, features TEXT, classes TEXT)")
        connection.execute("CREATE TABLE predictions (id INTEGER PRIMARY KEY, inputs BLOB)")
    drops: list[tuple[str, int]] = []
    writer = PredictionWriter(
        path, MODEL, flush_seconds=0.02, on_drop=lambda reason, count: drops.append((reason, count))
    )
    writer.start()
    submit(writer, 1)
    writer.close()
    assert drops == [("error", 1)]
    with pytest.raises(UnreadableLogError, match="no such column"):
        read_recent(path, 10)


def test_rejected_requests_are_not_logged(api_settings, api_bundle, log_path):
    with logged_client(api_settings, log_path) as client:
        assert client.post("/predict", json={"nothing": 1.0}).status_code == 422
        assert client.post("/predict", **api_bundle.single(0)).status_code == 200
    assert len(read_recent(log_path, 10)) == 1


def test_logging_can_be_turned_off(api_settings, api_bundle, log_path):
    with logged_client(api_settings, log_path, enabled=False) as client:
        response = client.post("/predict", **api_bundle.single(0))
    assert response.status_code == 200
    assert "x-request-id" not in response.headers
    assert not log_path.exists()


def test_an_unwritable_folder_costs_log_rows_never_answers(api_settings, api_bundle, tmp_path,
                                                           caplog):  # fmt: skip
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    caplog.set_level(logging.WARNING)
    with logged_client(api_settings, blocker / "predictions.sqlite") as client:
        for index in range(4):
            assert client.post("/predict", **api_bundle.single(index)).status_code == 200
        wait_for(lambda: dropped(client, "unwritable") == 4)
    warnings = [r for r in caplog.records if "prediction log" in r.getMessage()]
    assert len(warnings) == 1, "one warning per outage, not one per request"


def test_a_lock_held_too_long_drops_rows_then_writing_resumes(log_path):
    drops: list[tuple[str, int]] = []
    writer = PredictionWriter(
        log_path, MODEL, busy_timeout=0.1, flush_seconds=0.02, on_drop=lambda *d: drops.append(d)
    )
    writer.start()
    submit(writer, 0)
    wait_for(lambda: log_path.exists() and len(read_recent(log_path, 10)) == 1)
    holder = sqlite3.connect(log_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing for a long time
    submit(writer, 1, 2)
    wait_for(lambda: drops == [("locked", 2)])
    holder.execute("ROLLBACK")
    holder.close()
    submit(writer, 3)
    writer.close()
    logged = read_recent(log_path, 10)
    assert [p.request_id for p in logged] == ["request-0", "request-3"]
    assert logged[1].inputs == {"x": 3.0, "y": 1.5, "z": -2.0}
    assert logged[1].probabilities == {"a": 0.75, "b": 0.25}


def test_workers_opening_a_new_log_at_the_same_moment_all_write(tmp_path):
    """The switch to WAL mode does not wait for the lock by itself: without the writer's own
    wait, about one trial in seven lost a flush as `locked`."""
    drops: list[tuple[str, int]] = []
    for trial in range(100):
        path = tmp_path / f"trial-{trial}" / "predictions.sqlite"
        writers = [PredictionWriter(path, MODEL, on_drop=lambda *d: drops.append(d))
                   for _ in range(4)]  # fmt: skip
        for index, writer in enumerate(writers):
            submit(writer, index)
            writer.start()
        close_at_once(writers)  # all four write their first flush at the same moment
        assert drops == [], f"trial {trial}"
        assert sorted(p.request_id for p in read_recent(path, 10)) == [
            f"request-{index}" for index in range(len(writers))
        ]


def test_a_full_log_deletes_its_oldest_rows_and_keeps_the_new_ones(log_path):
    drops: list[tuple[str, int]] = []
    written: list[int] = []
    evicted: list[int] = []
    wide = LoggedModel(version=1, features=tuple(f"f{i}" for i in range(30)), classes=("a", "b"))
    # A cap of 16 pages of 4 kB: full after about a hundred rows of 30 values.
    writer = PredictionWriter(
        log_path,
        wide,
        max_bytes=16 * 4096,
        flush_seconds=0.02,
        on_write=written.append,
        on_drop=lambda *d: drops.append(d),
        on_evict=evicted.append,
    )
    writer.start()
    for batch in range(60):  # 10 requests at a time, each batch written before the next
        for index in range(10):
            writer.submit(f"r{batch}-{index}", [(range(30), "a", (1.0, 0.0))])
        wait_for(lambda done=10 * (batch + 1): sum(written) == done)
    writer.close()
    kept = [p.request_id for p in read_recent(log_path, 1000)]
    assert drops == [] and sum(written) == 600
    assert sum(evicted) == 600 - len(kept) > 0
    order = [tuple(map(int, request_id[1:].split("-"))) for request_id in kept]
    assert kept[-1] == "r59-9" and order == sorted(order)  # the newest, in order
    assert log_path.stat().st_size <= 16 * 4096


def test_a_deleted_or_replaced_log_is_started_again_and_the_loss_counted(log_path, caplog):
    drops: list[tuple[str, int]] = []
    written: list[int] = []
    writer = PredictionWriter(
        log_path, MODEL, flush_seconds=0.02, on_write=written.append,
        on_drop=lambda *d: drops.append(d),
    )  # fmt: skip
    writer.start()
    submit(writer, 0, 1)
    wait_for(lambda: sum(written) == 2)
    caplog.set_level(logging.WARNING)
    log_path.unlink()
    submit(writer, 2)
    wait_for(lambda: sum(written) == 3)
    assert drops == [("deleted", 2)]
    assert [p.request_id for p in read_recent(log_path, 10)] == ["request-2"]
    assert "deleted or replaced: 2 predictions" in caplog.text
    # Replaced by another log: the writer goes on in the file now at that path.
    replacement = log_path.with_name("other.sqlite")
    other = PredictionWriter(replacement, MODEL)
    other.start()
    submit(other, 7)
    other.close()
    replacement.replace(log_path)
    submit(writer, 3)
    writer.close()
    assert drops == [("deleted", 2), ("deleted", 1)]
    assert [p.request_id for p in read_recent(log_path, 10)] == ["request-7", "request-3"]


def test_a_flush_of_several_statements_writes_every_row_in_order(log_path):
    count = 2 * ROWS_PER_INSERT + 3  # two full statements and a short one, in one flush
    writer = PredictionWriter(log_path, MODEL)
    for index in range(0, count, 3):  # requests of up to three records, queued before it starts
        writer.submit(
            f"request-{index}",
            [((i, -i / 4, 1e300), "ab"[i % 2], (i / count, 1 - i / count))
             for i in range(index, min(index + 3, count))],
        )  # fmt: skip
    writer.start()
    writer.close()
    logged = read_recent(log_path, 10 * count)
    assert [p.inputs["x"] for p in logged] == list(range(count))
    assert [p.position for p in logged[:5]] == [0, 1, 2, 0, 1]
    last = logged[-1]
    assert (last.request_id, last.label) == (f"request-{count - 2}", "ab"[(count - 1) % 2])
    assert last.inputs == {"x": count - 1, "y": -(count - 1) / 4, "z": 1e300}
    assert last.probabilities == {"a": (count - 1) / count, "b": 1 - (count - 1) / count}


def test_rows_past_the_retention_are_deleted_at_start(log_path):
    first = PredictionWriter(log_path, MODEL)
    first.start()
    submit(first, 0, 1)
    first.close()
    with contextlib.closing(sqlite3.connect(log_path)) as connection, connection:
        old = time.time() - 40 * 86_400
        connection.execute(
            "UPDATE predictions SET logged_at = ? WHERE request_id = ?", (old, "request-0")
        )
    second = PredictionWriter(log_path, MODEL, retention_days=30)
    second.start()
    submit(second, 2)
    second.close()
    assert [p.request_id for p in read_recent(log_path, 10)] == ["request-1", "request-2"]


def test_writers_of_two_threads_share_the_file(log_path):
    writers = [PredictionWriter(log_path, MODEL) for _ in range(2)]
    for writer in writers:
        writer.start()

    def fill(writer: PredictionWriter, start: int) -> None:
        submit(writer, *range(start, start + 300))

    threads = [threading.Thread(target=fill, args=(w, 1000 * n)) for n, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for writer in writers:
        writer.close()
    ids = [p.request_id for p in read_recent(log_path, 1000)]
    assert len(ids) == len(set(ids)) == 600


def test_a_stopped_service_has_written_everything_it_answered(api_settings, api_bundle,
                                                             log_path):  # fmt: skip
    with logged_client(api_settings, log_path) as client:
        for index in range(len(api_bundle.labels)):
            client.post("/predict", **api_bundle.single(index))
    # No wait: stopping the service wrote what was queued.
    assert len(read_recent(log_path, 1000)) == len(api_bundle.labels)
