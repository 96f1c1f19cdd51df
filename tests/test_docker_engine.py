"""The container tests' engine works end to end, as M5's Dockerfile and compose stack will use it.

A multi-stage build FROM the local base image (passed as a build ARG, as the generated Dockerfile
will take it) pip-installs from PyPI through the machine's CA; the container answers HTTP on a
port published on 127.0.0.1 only; compose v2 validates and runs the same service. Build times
are printed (run with -s to see them).
"""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported for real by pytest_plugins, so that pytest may rewrite its asserts
    from docker_fixtures import DockerEngine

pytestmark = pytest.mark.slow
pytest_plugins = ["docker_fixtures"]

# No `# syntax=` line: BuildKit would pull that frontend image from Docker Hub.
DOCKERFILE = """\
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
RUN python3 -m venv /opt/venv \\
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check six==1.17.0

FROM ${BASE_IMAGE}
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /srv
RUN python3 -c "import six; print(six.__version__)" > version.txt
EXPOSE 8000
CMD ["python3", "-m", "http.server", "8000"]
"""
COMPOSE = """\
services:
  web:
    build:
      context: .
      args:
        BASE_IMAGE: {base_image}
    image: {image}
    init: true
    ports:
      - "127.0.0.1::8000"
"""


def http_get(url: str, timeout: float = 30.0) -> str:
    """The body at url, retried until the server is up (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode().strip()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def loopback_port(engine: DockerEngine, *command: str) -> str:
    """host:port of a published port; it must be bound to 127.0.0.1 only."""
    addresses = engine.docker(*command).stdout.split()
    assert addresses and all(a.startswith("127.0.0.1:") for a in addresses), addresses
    return addresses[0]


@pytest.fixture
def build_dir(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    return tmp_path


def test_multi_stage_build_and_loopback_port(docker_engine: DockerEngine, build_dir: Path):
    image = f"mlops-engine-test:{uuid.uuid4().hex[:8]}"
    container = None
    build = ["build", "--build-arg", f"BASE_IMAGE={docker_engine.base_image}", "-t", image, "."]
    try:
        started = time.perf_counter()
        docker_engine.docker(*build, "--no-cache", cwd=build_dir)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        docker_engine.docker(*build, cwd=build_dir)
        warm = time.perf_counter() - started
        sizes = {
            name: int(docker_engine.docker("image", "inspect", "-f", "{{.Size}}", name).stdout)
            for name in (docker_engine.base_image, image)
        }
        print(
            f"\nbuild cold {cold:.1f} s, warm {warm:.1f} s; "
            + ", ".join(f"{name} {size / 1e6:.0f} MB" for name, size in sizes.items())
        )
        container = docker_engine.docker(
            "run", "--detach", "--init", "--publish", "127.0.0.1::8000", image
        ).stdout.strip()
        address = loopback_port(docker_engine, "port", container, "8000/tcp")
        assert http_get(f"http://{address}/version.txt") == "1.17.0"
    finally:
        if container:
            docker_engine.docker("rm", "--force", container, check=False)
        docker_engine.docker("image", "rm", "--force", image, check=False)


def test_compose_v2_validates_and_runs(docker_engine: DockerEngine, build_dir: Path):
    version = docker_engine.docker("compose", "version").stdout
    assert re.search(r"version v?2\.", version), version
    project = f"mlops-engine-test-{uuid.uuid4().hex[:8]}"
    image = f"{project}:latest"
    (build_dir / "compose.yaml").write_text(
        COMPOSE.format(base_image=docker_engine.base_image, image=image)
    )
    compose = ["compose", "--project-name", project]
    config = docker_engine.docker(*compose, "config", cwd=build_dir).stdout
    assert "host_ip: 127.0.0.1" in config
    try:
        docker_engine.docker(*compose, "up", "--detach", "--build", "--wait", cwd=build_dir)
        address = loopback_port(docker_engine, *compose, "port", "web", "8000")
        assert http_get(f"http://{address}/version.txt") == "1.17.0"
    finally:
        down = ["down", "--volumes", "--timeout", "5"]
        docker_engine.docker(*compose, *down, cwd=build_dir, check=False)
        docker_engine.docker("image", "rm", "--force", image, check=False)
