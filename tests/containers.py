"""A project's service image built and run on the test engine, for the slow container tests.

`built_image` runs the project's own `make image` on a given base and removes the image after;
`serving_container` runs an image detached on a free loopback port, waits for /ready and stops
the container after (`--rm` removes it). tests/test_delivery_docker.py and the task modules
(tests/test_task_text.py, tests/test_task_image.py) build and run their images through them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import run
from project_shell import free_port, http

if TYPE_CHECKING:  # loaded for real by the test modules' pytest_plugins
    from docker_fixtures import DockerEngine

READY_SECONDS = 60


def wait(check, seconds: float, step: float = 0.3):
    """Poll `check()` until it returns something true or `seconds` pass; return its last value."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(step)


def compose_services(project: Path, env: dict[str, str]) -> list[dict]:
    """`docker compose ps` of a stack's running services, one dict each."""
    listing = run(["docker", "compose", "ps", "--format", "json"], cwd=project, env=env).stdout
    services = [json.loads(line) for line in listing.splitlines() if line.strip()]
    if len(services) == 1 and isinstance(services[0], list):  # older compose: one JSON array
        services = services[0]
    return services


def image_size_mb(engine: DockerEngine, image: str) -> float:
    return int(engine.docker("image", "inspect", "--format", "{{.Size}}", image).stdout) / 1e6


@contextmanager
def built_image(
    project: Path, env: dict[str, str], engine: DockerEngine, base: str, *make_args: str
) -> Iterator[str]:
    """`make <make_args> image` of `project` on the base image `base`, under a fresh tag;
    yields the tag and removes the image afterwards."""
    name = f"{project.name}:{uuid.uuid4().hex[:8]}"
    try:
        command = ["make", *make_args, "image", f"IMAGE={name}", f"BASE_IMAGE={base}"]
        run(command, cwd=project, env=engine.environment(env))
        yield name
    finally:
        engine.docker("image", "rm", "--force", name, check=False)


@dataclass(frozen=True)
class Container:
    """A running container of the service: its address on the loopback and its id."""

    url: str
    id: str
    engine: DockerEngine

    def logs(self) -> str:
        return self.engine.docker("logs", self.id, check=False).stderr


@contextmanager
def serving_container(
    engine: DockerEngine, image: str, *options: str, port: int = 8000
) -> Iterator[Container]:
    """`docker run --detach --rm <options> <image>` with the container's `port` published on a
    free loopback port; yields once /ready answers 200 (fails with the logs after 60 s), then
    stops the container."""
    address = f"127.0.0.1:{free_port()}"
    run_args = ["run", "--detach", "--rm", *options, "--publish", f"{address}:{port}", image]
    identifier = engine.docker(*run_args).stdout.strip()
    container = Container(f"http://{address}", identifier, engine)
    try:
        ready = wait(lambda: http("GET", f"{container.url}/ready")[0] == 200, READY_SECONDS, 0.05)
        if not ready:
            pytest.fail(f"{image} not ready after {READY_SECONDS} s\n{container.logs()}")
        yield container
    finally:
        engine.docker("stop", identifier, check=False)
