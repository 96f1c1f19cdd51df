"""Settings of the prediction service, read from environment variables and `.env`.

Every variable starts with `API_`, e.g. `API_BUNDLE_DIR=/srv/bundle` or
`API_MAX_BATCH_SIZE=500`; `.env.example` lists them with their defaults. The exceptions are
MLflow's own variables (`MLFLOW_TRACKING_URI` and its credentials), read under their usual names
for API_MODEL_URI.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from {{ cookiecutter.module_name }}.config import (
    BUNDLE_DIR,
    MODELS_DIR,
    PROJ_ROOT,
    TEST_FILE,
)

ENV_FILE = PROJ_ROOT / ".env"


class Settings(BaseSettings):
    """What the service needs to know before it starts."""

    model_config = SettingsConfigDict(
        env_prefix="API_",
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        validate_by_name=True,  # so tests can pass tracking_uri=... as well as the variable name
    )

    bundle_dir: Path = Field(
        default=BUNDLE_DIR, description="Folder holding model.onnx and metadata.json"
    )
    model_uri: str = Field(
        default="",
        description="models:/<name>@<alias> (or models:/<name>/<version>): serve the bundle "
        "that `export` logged to that version's run on the MLflow tracking server instead of "
        "bundle_dir; needs an http(s) MLFLOW_TRACKING_URI",
    )
    model_cache_dir: Path = Field(
        default=MODELS_DIR / "registry",
        description="Where the bundle named by model_uri is downloaded",
    )
    model_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest time for resolving model_uri and downloading its bundle, in all",
    )
    tracking_uri: str = Field(
        default="", validation_alias="MLFLOW_TRACKING_URI", description="MLflow tracking server"
    )
    tracking_token: SecretStr | None = Field(
        default=None, validation_alias="MLFLOW_TRACKING_TOKEN", description="Bearer token"
    )
    tracking_username: str | None = Field(
        default=None, validation_alias="MLFLOW_TRACKING_USERNAME", description="Basic auth user"
    )
    tracking_password: SecretStr | None = Field(
        default=None, validation_alias="MLFLOW_TRACKING_PASSWORD", description="Basic auth"
    )
    max_batch_size: int = Field(
        default=256, ge=1, le=100_000, description="Most records one /predict/batch accepts"
    )
    onnx_threads: int = Field(
        default=1,
        ge=0,
        description="Threads ONNX Runtime uses per request (0: one per core); 1 suits small "
        "models, since concurrent requests already share the cores",
    )
    examples_file: Path | None = Field(
        default=TEST_FILE,
        description="CSV whose rows become the request examples of /docs; when it is missing, "
        "the examples are the middle of each feature's training range",
    )
    log_level: str = Field(default="INFO", description="Level of the service's own log lines")
