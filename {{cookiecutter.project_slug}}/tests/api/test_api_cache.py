"""The Redis prediction cache, against a real `redis-server` that the tests start and stop.

The server listens on a free loopback port with its files in tmp_path, and never persists
anything. The service must answer the same with the cache on, off, down or hung.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from {{ cookiecutter.module_name }}.api.cache import (
    CacheSettings,
    RedisPredictionCache,
)
from {{ cookiecutter.module_name }}.api.main import (
    create_app,
)

REDIS_SERVER = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


class RedisServer:
    """A throw-away redis-server process on 127.0.0.1."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(self.folder),
                "--save", "",
                "--appendonly", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = self.client()
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case a test paused it
            self.process.terminate()
            self.process.wait(timeout=10)

    def pause(self) -> None:
        """Freeze the server: connections stay open but nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)


@pytest.fixture
def redis_server(tmp_path: Path, free_port: Callable[[], int]) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def cached_client(api_settings, monkeypatch, url: str, retry_after: float = 0.2) -> TestClient:
    monkeypatch.setenv("API_CACHE_URL", url)
    monkeypatch.setenv("API_CACHE_TTL_SECONDS", "60")
    monkeypatch.setenv("API_CACHE_RETRY_AFTER_SECONDS", str(retry_after))
    return TestClient(create_app(api_settings))


pytestmark = needs_redis


@pytest.mark.slow
def test_second_request_is_a_hit_with_the_same_answer(
    api_settings, api_bundle, monkeypatch, redis_server
):
    record = api_bundle.records[0]
    with cached_client(api_settings, monkeypatch, redis_server.url) as client:
        first = client.post("/predict", json=record)
        # Same values, other key order: the key hashes the validated values, not the JSON text.
        second = client.post("/predict", json=dict(reversed(list(record.items()))))
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.json() == second.json()
    keys = redis_server.client().keys("prediction:*")
    assert len(keys) == 1
    assert 0 < redis_server.client().ttl(keys[0]) <= 60


@pytest.mark.slow
def test_batch_reads_and_fills_the_cache_per_record(
    api_settings, api_bundle, monkeypatch, redis_server
):
    records = api_bundle.records[:5]
    with cached_client(api_settings, monkeypatch, redis_server.url) as client:
        client.post("/predict", json=records[1])
        client.post("/predict", json=records[3])
        batch = client.post("/predict/batch", json={"records": records})
        again = client.post("/predict/batch", json={"records": records})
        singles = [client.post("/predict", json=record).json() for record in records]
    assert (batch.headers["x-cache"], again.headers["x-cache"]) == ("2/5", "5/5")
    assert batch.json() == again.json()
    assert [p["label"] for p in batch.json()["predictions"]] == api_bundle.labels[:5]
    assert [p["probabilities"] for p in batch.json()["predictions"]] == [
        s["probabilities"] for s in singles
    ]


@pytest.mark.slow
def test_foreign_entry_is_a_miss_and_is_replaced(
    api_settings, api_bundle, monkeypatch, redis_server
):
    record = api_bundle.records[0]
    with cached_client(api_settings, monkeypatch, redis_server.url) as client:
        client.post("/predict", json=record)
        [key] = redis_server.client().keys("prediction:*")
        redis_server.client().set(key, b"\x00not json")
        assert client.post("/predict", json=record).headers["x-cache"] == "miss"
        assert client.post("/predict", json=record).headers["x-cache"] == "hit"


@pytest.mark.slow
def test_service_keeps_answering_when_redis_goes_away_and_recovers(
    api_settings, api_bundle, monkeypatch, redis_server
):
    record, other = api_bundle.records[0], api_bundle.records[1]
    with cached_client(api_settings, monkeypatch, redis_server.url, retry_after=0.2) as client:
        expected = client.post("/predict", json=record).json()
        assert client.post("/predict", json=record).headers["x-cache"] == "hit"

        redis_server.stop()
        for _ in range(3):
            response = client.post("/predict", json=record)
            assert response.status_code == 200
            assert response.json() == expected
            assert response.headers["x-cache"] == "miss"
        assert client.post("/predict/batch", json={"records": [record, other]}).status_code == 200
        assert client.get("/ready").status_code == 200

        redis_server.start()  # same port, empty
        time.sleep(0.3)  # past API_CACHE_RETRY_AFTER_SECONDS
        assert client.post("/predict", json=record).headers["x-cache"] == "miss"
        assert client.post("/predict", json=record).headers["x-cache"] == "hit"


@pytest.mark.slow
def test_service_answers_when_redis_hangs(api_settings, api_bundle, monkeypatch, redis_server):
    record = api_bundle.records[0]
    with cached_client(api_settings, monkeypatch, redis_server.url) as client:
        expected = client.post("/predict", json=record).json()
        redis_server.pause()
        try:
            answers: list = []
            worker = threading.Thread(
                target=lambda: answers.append(client.post("/predict", json=record))
            )
            worker.start()
            # A liveness guard, not a latency check: without a bounded timeout this never ends.
            worker.join(timeout=30)
            assert not worker.is_alive(), "the request waited on the hung cache"
        finally:
            redis_server.resume()
    [response] = answers
    assert response.status_code == 200
    assert response.json() == expected
    assert response.headers["x-cache"] == "miss"


def test_service_answers_when_redis_is_down_from_the_start(
    api_settings, api_bundle, monkeypatch, caplog, free_port
):
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with cached_client(api_settings, monkeypatch, closed) as client:
        assert client.get("/ready").status_code == 200
        response = client.post("/predict", json=api_bundle.records[0])
        assert response.status_code == 200
        assert response.headers["x-cache"] == "miss"
        assert response.json()["label"] == api_bundle.labels[0]
    assert any("does not answer" in record.getMessage() for record in caplog.records)
    assert any("serving uncached" in record.getMessage() for record in caplog.records)


def test_cache_is_off_without_a_url(api_settings, api_bundle, monkeypatch):
    with cached_client(api_settings, monkeypatch, "") as client:
        assert "x-cache" not in client.post("/predict", json=api_bundle.records[0]).headers


def test_keys_depend_on_model_and_values_only():
    cache = RedisPredictionCache(client=None, settings=CacheSettings(url=None))  # type: ignore[arg-type]
    rows = np.asarray([[1.0, 2.0], [1.0, 2.0], [1.0, 2.5]], dtype=np.float32)
    first, same, other = cache.keys("model:1:abc", rows)
    assert first == same != other
    assert cache.keys("model:2:def", rows)[0] != first
    assert cache.keys("model:1:abc", rows.astype(np.float64))[0] == first
    assert all(key.startswith("prediction:") for key in (first, other))


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("API_CACHE_URL", "redis://cache:6379/2")
    monkeypatch.setenv("API_CACHE_TTL_SECONDS", "120")
    settings = CacheSettings()
    assert (settings.url, settings.ttl_seconds) == ("redis://cache:6379/2", 120)
    assert os.environ["API_CACHE_URL"] == settings.url
