"""Fixtures of the prediction-service tests: the served bundle's (bundles.py), the service's
settings and a test client of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import served
from bundles import (  # the served bundle's fixtures
    ApiBundle,
    api_bundle,
{%- if cookiecutter.task != "image" %}
    mixed_bundle,
    mixed_settings,
{%- endif %}
)

__all__ = ["api_bundle"{% if cookiecutter.task != "image" %}, "mixed_bundle", "mixed_settings"{% endif %}]


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """A function giving a loopback port nobody listens on now, for servers the tests start."""
    return served.free_port


{%- if cookiecutter.use_redis_cache %}


@pytest.fixture(autouse=True)
def no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever `.env` says, the tests (and the servers they start) run without the prediction
    cache, unless they set API_CACHE_URL themselves (test_api_cache.py)."""
    monkeypatch.setenv("API_CACHE_URL", "")
{%- endif %}


@pytest.fixture
def api_settings(api_bundle: ApiBundle, tmp_path: Path) -> Any:
    """The service's settings for the tests{% if cookiecutter.use_monitoring %}: the prediction log and drift.json in `tmp_path`{% endif %}."""
    from {{ cookiecutter.module_name }}.api.settings import (
        Settings,
    )

    return Settings(
        bundle_dir=api_bundle.directory,
        examples_file=api_bundle.examples_file,
        max_batch_size=8,
        range_margin=0.1,
        max_body_bytes=64 * 1024,
{%- if cookiecutter.task == "image" %}
        max_image_bytes=8 * 1024,
{%- endif %}
{%- if cookiecutter.use_redis_cache %}
        cache_url=None,
{%- endif %}
{%- if cookiecutter.use_monitoring %}
        prediction_log_path=tmp_path / "predictions.sqlite",
        metrics_drift_summary=tmp_path / "drift.json",
{%- endif %}
    )


@pytest.fixture
def client(api_settings: Any) -> Iterator[Any]:
    """A test client of a started app (lifespan run, model loaded)."""
    from fastapi.testclient import TestClient

    from {{ cookiecutter.module_name }}.api.main import (
        create_app,
    )

    with TestClient(create_app(api_settings)) as test_client:
        yield test_client
