"""The service's settings: one class, every `API_*` variable, from the environment or `.env`
(`.env.example` lists them with their defaults). `create_app` reads them once into
`app.state.settings`, where the optional parts (api/main.py, PARTS) find their own fields.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..config import BUNDLE_DIR, {% if cookiecutter.use_monitoring %}DRIFT_SUMMARY, PREDICTION_LOG, {% endif %}TEST_FILE


class Settings(BaseSettings):
    """What the service needs to know before it starts."""

    model_config = SettingsConfigDict(env_prefix="API_", extra="ignore")

    bundle_dir: Path = Field(BUNDLE_DIR, description="Folder of model.onnx and metadata.json")
    # How far past its training range a feature may go, as a share of the range's width on each
    # side (0.1: 10%); past it, a 422. A feature never negative in training stays >= 0.
    range_margin: float = Field(0.1, ge=0, le=10)
    max_batch_size: int = Field(256, ge=1, le=100_000, description="Most records per batch")
    max_text_chars: int = Field(5000, ge=1, description="Longest value of a text feature")
    strict_categories: bool = Field(False, description="422 for a category unseen in training")
{%- if cookiecutter.task == "image" %}
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Larger bodies: 413, unread")
    # A picture's own caps (api/predictions.py): more bytes, or more pixels than images.py's
    # MAX_PIXELS, is a 413; the body cap above bounds a whole batch.
    max_image_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="Largest picture file")
{%- else %}
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="Larger bodies: 413, unread")
{%- endif %}
    # 1 suits small models: concurrent requests already share the cores.
    onnx_threads: int = Field(1, ge=0, description="ONNX Runtime threads per call (0: all cores)")
    examples_file: Path | None = Field(TEST_FILE, description="Rows shown as examples in /docs")
    log_level: str = Field("INFO", description="Level of the service's own log lines")
{%- if cookiecutter.use_redis_cache %}

    # The prediction cache (api/cache.py): off unless cache_url is set.
    cache_url: str | None = Field(None, description="e.g. redis://127.0.0.1:6379/0")
    cache_ttl_seconds: int = Field(3600, ge=1, description="How long a prediction is kept")
    cache_timeout_seconds: float = Field(0.05, gt=0, description="Longest wait for Redis")
    cache_retry_after_seconds: float = Field(5.0, ge=0, description="Uncached after a failure")
    cache_key_prefix: str = Field("prediction", description="Namespace of the keys")
{%- endif %}
{%- if cookiecutter.use_monitoring %}

    # Metrics (monitoring/metrics.py) and the prediction log (monitoring/prediction_log.py).
    metrics_enabled: bool = Field(True, description="Serve /metrics and count requests")
    metrics_drift_summary: Path = Field(DRIFT_SUMMARY, description="drift.json for /metrics")
    prediction_log_enabled: bool = Field(True, description="false: log no prediction")
    prediction_log_path: Path = Field(PREDICTION_LOG, description="The SQLite file")
    prediction_log_retention_days: float = Field(30, gt=0, description="Older rows go at start")
    prediction_log_max_mb: int = Field(1024, ge=1, description="Size cap; past it, oldest rows go")
    # How long a write waits while another worker writes.
    prediction_log_busy_timeout_seconds: float = Field(5.0, gt=0)
    prediction_log_queue_size: int = Field(10_000, ge=1, description="Most records waiting")
{%- endif %}
