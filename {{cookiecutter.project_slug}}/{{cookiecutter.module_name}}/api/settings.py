"""The service's settings: one class, every environment variable starting with `API_`.

For example `API_BUNDLE_DIR=/srv/bundle` or `API_MAX_BATCH_SIZE=500`, in the environment or in
`.env` (importing the package loads it, see config.py); `.env.example` lists every variable with
its default. The app reads them once, in `create_app`, and keeps them in `app.state.settings`;
the optional parts of the service (api/main.py, PARTS) read their own group of fields from there.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..config import BUNDLE_DIR, {% if cookiecutter.use_monitoring %}DRIFT_SUMMARY, PREDICTION_LOG, {% endif %}TEST_FILE


class Settings(BaseSettings):
    """What the service needs to know before it starts."""

    model_config = SettingsConfigDict(env_prefix="API_", extra="ignore")

    bundle_dir: Path = Field(
        default=BUNDLE_DIR, description="Folder holding model.onnx and metadata.json (a bundle)"
    )
    range_margin: float = Field(
        default=0.1,
        ge=0,
        le=10,
        description="How far past its training range a feature may go, as a share of the "
        "range's width on each side (0.1: 10%); a feature never negative in training stays >= 0",
    )
    max_batch_size: int = Field(
        default=256, ge=1, le=100_000, description="Most records one /predict/batch accepts"
    )
    max_text_chars: int = Field(
        default=5000, ge=1, description="Longest value a text feature accepts, in characters"
    )
    strict_categories: bool = Field(
        default=False,
        description="Refuse (422) a category value the model did not see in training, instead "
        "of letting the model ignore it",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body; a larger one gets 413 before it is parsed",
    )
    onnx_threads: int = Field(
        default=1,
        ge=0,
        description="Threads ONNX Runtime uses per request (0: one per core); 1 suits small "
        "models, since concurrent requests already share the cores",
    )
    examples_file: Path | None = Field(
        default=TEST_FILE,
        description="CSV whose rows become the request examples of /docs; without it, the "
        "middle of each feature's range",
    )
    log_level: str = Field(default="INFO", description="Level of the service's own log lines")
{%- if cookiecutter.use_redis_cache %}

    # The prediction cache (api/cache.py): off unless cache_url is set.
    cache_url: str | None = Field(default=None, description="e.g. redis://127.0.0.1:6379/0")
    cache_ttl_seconds: int = Field(default=3600, ge=1, description="How long a prediction is kept")
    cache_timeout_seconds: float = Field(
        default=0.05, gt=0, description="Longest wait for Redis on one request"
    )
    cache_retry_after_seconds: float = Field(
        default=5.0, ge=0, description="How long to serve uncached after Redis failed"
    )
    cache_key_prefix: str = Field(default="prediction", description="Namespace of the keys")
{%- endif %}
{%- if cookiecutter.use_monitoring %}

    # Metrics (monitoring/metrics.py).
    metrics_enabled: bool = Field(default=True, description="Serve /metrics and count requests")
    metrics_drift_summary: Path = Field(
        default=DRIFT_SUMMARY, description="drift.json of `make drift`, published at /metrics"
    )
    # The prediction log (monitoring/prediction_log.py, monitoring/store.py).
    prediction_log_enabled: bool = Field(
        default=True, description="Log every prediction (false: log nothing)"
    )
    prediction_log_path: Path = Field(default=PREDICTION_LOG, description="The SQLite file")
    prediction_log_retention_days: float = Field(
        default=30, gt=0, description="Rows older than this are deleted when the service starts"
    )
    prediction_log_max_mb: int = Field(
        default=1024, ge=1, description="Size cap of the file; past it, the oldest rows go"
    )
    prediction_log_busy_timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long a write waits while another worker writes"
    )
    prediction_log_queue_size: int = Field(
        default=10_000, ge=1, description="Requests waiting to be written before some are dropped"
    )
{%- endif %}
