"""Load test of the prediction service with Locust: `make loadtest` (the service must be running,
e.g. `make serve` in another terminal).

Each simulated user posts single records to /predict, and now and then a small batch. Records are
drawn inside each feature's training range, read from the service's own `GET /model`, so the file
works against any deployed bundle without the dataset; an image model gets pictures of random
pixels at the size it reads, uploaded as PNG files.
{%- if cookiecutter.use_redis_cache %}
`--cache-hit-rate` is the share of requests that repeat one of a few records already sent (a warm
cache answers them); the rest are new. The hit rate the service reports (`X-Cache`) is logged.
{%- endif %}

The run fails (exit code 1) when the 99th percentile of response time exceeds `--p99-ms` or any
request fails, so CI can use it as a gate:

    uv run locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:8000 \\
        --users 16 --spawn-rate 16 --run-time 30s --p99-ms 100
{%- if cookiecutter.use_redis_cache %} --cache-hit-rate 0.5{% endif %}
"""

from __future__ import annotations

import io
import logging
import random
{%- if cookiecutter.use_redis_cache %}
from collections import Counter
{%- endif %}
from typing import Any, ClassVar

from locust import HttpUser, between, events, task
from locust.env import Environment

logger = logging.getLogger(__name__)

BATCH_SIZE = 16
# The words of the made-up texts sent to a model with text features.
TEXT_WORDS = ["the", "report", "shows", "no", "clear", "sign", "of", "change", "since", "last"]
{%- if cookiecutter.use_redis_cache %}
# Records that users repeat to produce cache hits; few, so each is soon cached.
REPEATED_RECORDS = 20
# X-Cache answers of /predict: the hit rate actually observed.
CACHE_ANSWERS: Counter[str] = Counter()
{%- endif %}


@events.init_command_line_parser.add_listener
def add_options(parser: Any) -> None:
    parser.add_argument(
        "--p99-ms",
        type=float,
        default=100.0,
        env_var="LOADTEST_P99_MS",
        help="Fail the run when the 99th percentile response time exceeds this (ms)",
    )
{%- if cookiecutter.use_redis_cache %}
    parser.add_argument(
        "--cache-hit-rate",
        type=float,
        default=0.0,
        env_var="LOADTEST_CACHE_HIT_RATE",
        help="Share of requests (0 to 1) that repeat an earlier record",
    )
{%- endif %}


class Features:
    """The served model's features, as /model describes them, read once per process."""

    features: ClassVar[list[dict[str, Any]]] = []
{%- if cookiecutter.use_redis_cache %}
    repeated: ClassVar[list[dict[str, Any]]] = []
{%- endif %}

    @classmethod
    def load(cls, client: Any) -> None:
        if cls.features:
            return
        with client.get("/model", name="/model", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"/model answered {response.status_code}: is a model loaded?")
                raise RuntimeError("the service has no model: start it with a bundle first")
            cls.features = response.json()["features"]
{%- if cookiecutter.use_redis_cache %}
        cls.repeated = [cls.random_record() for _ in range(REPEATED_RECORDS)]
{%- endif %}

    @classmethod
    def random_record(cls) -> dict[str, Any]:
        """A value within each numeric feature's training range, a category seen in training,
        a few words of text."""
        return {feature["name"]: random_value(feature) for feature in cls.features}
{%- if cookiecutter.use_redis_cache %}

    @classmethod
    def record(cls, hit_rate: float) -> dict[str, Any]:
        if random.random() < hit_rate:
            return random.choice(cls.repeated)
        return cls.random_record()
{%- endif %}


def random_value(feature: dict[str, Any]) -> Any:
    if feature["kind"] == "image":
        return random_picture(feature)
    if feature["kind"] == "numeric":
        return random.uniform(feature["min"], feature["max"])
    if feature["kind"] == "category":
        return random.choice(feature["categories"])
    return " ".join(random.choices(TEXT_WORDS, k=random.randint(3, 12)))


def random_picture(feature: dict[str, Any]) -> bytes:
    """A PNG file of random pixels at the size and mode the image model reads."""
    from PIL import Image  # the image task's dependency

    size = (feature["width"], feature["height"])
    channels = 3 if feature["mode"] == "RGB" else 1
    noise = random.randbytes(size[0] * size[1] * channels)
    buffer = io.BytesIO()
    Image.frombytes(feature["mode"], size, noise).save(buffer, format="PNG")
    return buffer.getvalue()


def single(record: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a POST of `record` to /predict: JSON, or an image model's upload."""
    pictures = [value for value in record.values() if isinstance(value, bytes)]
    if pictures:
        return {"files": {"image": ("picture.png", pictures[0], "image/png")}}
    return {"json": record}


def several(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The arguments of a POST of `records` to /predict/batch."""
    uploads = [single(record).get("files") for record in records]
    if uploads[0]:
        return {"files": [("images", files["image"]) for files in uploads]}
    return {"json": {"records": records}}


class PredictionUser(HttpUser):
    wait_time = between(0, 0.01)

    def on_start(self) -> None:
        Features.load(self.client)
{%- if cookiecutter.use_redis_cache %}
        self.hit_rate = min(max(self.environment.parsed_options.cache_hit_rate, 0.0), 1.0)

    @task(10)
    def predict_one(self) -> None:
        record = Features.record(self.hit_rate)
        response = self.client.post("/predict", name="/predict", **single(record))
        if "X-Cache" in response.headers:
            CACHE_ANSWERS[response.headers["X-Cache"]] += 1

    @task(1)
    def predict_batch(self) -> None:
        records = [Features.record(self.hit_rate) for _ in range(BATCH_SIZE)]
{%- else %}

    @task(10)
    def predict_one(self) -> None:
        self.client.post("/predict", name="/predict", **single(Features.random_record()))

    @task(1)
    def predict_batch(self) -> None:
        records = [Features.random_record() for _ in range(BATCH_SIZE)]
{%- endif %}
        self.client.post("/predict/batch", name="/predict/batch", **several(records))


@events.quitting.add_listener
def check_thresholds(environment: Environment, **_kwargs: Any) -> None:
    """Turn the run into a pass or fail on the p99 threshold and on failed requests."""
    total = environment.stats.total
    if total.num_requests == 0:
        logger.error("no request was made")
        environment.process_exit_code = 1
        return
    p99 = total.get_response_time_percentile(0.99)
    limit = environment.parsed_options.p99_ms
    logger.info(
        "%d requests, %.1f req/s, p50 %s ms, p99 %s ms (limit %.0f ms), %d failures",
        total.num_requests,
        total.total_rps,
        total.get_response_time_percentile(0.5),
        p99,
        limit,
        total.num_failures,
    )
{%- if cookiecutter.use_redis_cache %}
    cached = sum(CACHE_ANSWERS.values())
    if cached:
        logger.info("cache hit rate of /predict: %.0f%%", 100 * CACHE_ANSWERS["hit"] / cached)
{%- endif %}
    if total.num_failures or p99 > limit:
        logger.error("load test failed: p99 %s ms > %.0f ms or requests failed", p99, limit)
        environment.process_exit_code = 1
