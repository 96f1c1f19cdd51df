"""Settings of the prediction service: environment variables starting with `API_`.

For example `API_BUNDLE_DIR=/srv/bundle` or `API_MAX_BATCH_SIZE=500`, in the environment or in
`.env` (importing the package loads it, see config.py); `.env.example` lists every variable with
its default. The app reads them once, in `create_app`; a route that needs one while it answers
receives them through the `SettingsDep` dependency (deps.py).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..config import BUNDLE_DIR, TEST_FILE


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
