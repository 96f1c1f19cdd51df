"""A real Docker engine for the template's container tests: the session fixture `docker_engine`.

Load it in a test module with `pytest_plugins = ["docker_fixtures"]` (one engine per session
however many modules ask) and type the argument with `DockerEngine`. It runs
tools/docker_engine.py: Debian's Docker is installed if missing (root and apt), our own dockerd
starts under $MLOPS_DOCKER_STATE (default /tmp/mlops-docker) unless it already runs, and the local
Python base image is built once and kept between runs. The daemon is stopped at the end of the
session only if this session started it; with several workers (pytest-xdist), a worker's session
may end while another still builds, so the controlling process stops it at the very end instead
(conftest.py's session hooks).

On a machine with a Docker engine of its own, set MLOPS_DOCKER_HOST (e.g.
unix:///var/run/docker.sock): nothing is installed or started, `docker` from PATH is used and the
base image is $MLOPS_BASE_IMAGE or python:<version>-slim. A test that asks for the engine fails,
never skips, when none can be had: a tier that claims Docker must not pass without it.
Tests publish ports on 127.0.0.1 only (`-p 127.0.0.1::8000`, compose `"127.0.0.1::8000"`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "docker_engine.py"
DEFAULT_PYTHON = "3.11"


def load_tool():
    """tools/docker_engine.py as a module (tools/ is not a package)."""
    if "docker_engine" not in sys.modules:
        spec = importlib.util.spec_from_file_location("docker_engine", TOOL)
        module = importlib.util.module_from_spec(spec)
        sys.modules["docker_engine"] = module  # dataclasses look their module up while loading
        spec.loader.exec_module(module)
    return sys.modules["docker_engine"]


engine_tool = load_tool()


@dataclass
class DockerEngine:
    """How to reach the engine: `env` for subprocesses, `docker(...)` to run the CLI."""

    variables: dict[str, str]  # DOCKER_HOST, DOCKER_CONFIG, DOCKER_BUILDKIT
    cli: str  # the docker binary to run; `env` puts it first on PATH as `docker`
    base_image: str  # local/python:3.11 (or the external engine's base)
    state: object | None = None  # the tool's State when the engine is ours
    bin_dir: str | None = None
    _images: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The current environment plus the engine's variables (PATH as the test now has it)."""
        return self.environment(dict(os.environ))

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """`env` (a project's, say) plus the engine's variables, its `docker` first on PATH."""
        folders = env.get("PATH", os.defpath).split(os.pathsep)
        if self.bin_dir and folders[0] != self.bin_dir:
            folders.insert(0, self.bin_dir)
        return {**env, **self.variables, "PATH": os.pathsep.join(folders)}

    def python_image(self, version: str) -> str:
        """The base image for another Python (3.13 from Debian trixie), built on first use."""
        if version not in self._images:
            if self.state is None:
                default = f"python:{version}-slim"
                self._images[version] = os.environ.get("MLOPS_BASE_IMAGE", default)
            else:
                try:
                    self._images[version] = engine_tool.base_image(self.state, version)
                except engine_tool.EngineError as error:
                    problem = str(error)
                if version not in self._images:
                    pytest.fail(f"no Python {version} base image: {problem}", pytrace=False)
        return self._images[version]

    def docker(self, *args: str, cwd: Path | None = None, check: bool = True, timeout: float = 600):
        """Run `docker <args>`; with check, a non-zero exit fails the test with docker's output."""
        command = [self.cli, *args]
        done = subprocess.run(
            command,
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            pytest.fail(
                f"docker {' '.join(args)} exited {done.returncode}\n"
                f"--- stdout ---\n{done.stdout[-6000:]}\n--- stderr ---\n{done.stderr[-6000:]}"
            )
        return done


def external_engine(docker_host: str) -> DockerEngine:
    """An engine someone else runs: used as it is, never installed, started or stopped."""
    cli = shutil.which("docker")
    if cli is None:
        pytest.fail(f"MLOPS_DOCKER_HOST={docker_host} but no docker CLI on PATH", pytrace=False)
    variables = {"DOCKER_HOST": docker_host, "DOCKER_BUILDKIT": "1"}
    engine = DockerEngine(variables=variables, cli=cli, base_image="")
    if engine.docker("info", check=False).returncode != 0:
        pytest.fail(f"no Docker engine answers at MLOPS_DOCKER_HOST={docker_host}", pytrace=False)
    engine.base_image = engine.python_image(DEFAULT_PYTHON)
    return engine


def in_a_worker() -> bool:
    """True in a pytest-xdist worker, whose session ends while the others may go on."""
    return "PYTEST_XDIST_WORKER" in os.environ


def our_engine_runs() -> bool:
    """Whether our dockerd runs now (never true of an external engine, which is not ours)."""
    return not os.environ.get("MLOPS_DOCKER_HOST") and (
        engine_tool.our_pid(engine_tool.State()) is not None
    )


def stop_after_workers(ran_before: bool) -> None:
    """The controller of a run with workers, at its end: stop our engine if a worker started it
    (workers leave it running, since another may still need it)."""
    if not ran_before and our_engine_runs():
        engine_tool.stop(engine_tool.State())


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    """Our Docker engine with the local Python base image; see the module docstring."""
    if docker_host := os.environ.get("MLOPS_DOCKER_HOST"):
        yield external_engine(docker_host)
        return
    state = engine_tool.State()
    started, problem = False, None
    try:
        engine_tool.install(state)
        started = engine_tool.start(state)
        image = engine_tool.base_image(state, DEFAULT_PYTHON)
    except engine_tool.EngineError as error:
        problem = str(error)  # failed outside the except block: one line, no exception chain
        if started:
            engine_tool.stop(state)
    if problem:
        pytest.fail(f"no Docker engine for the container tests: {problem}", pytrace=False)
    variables = engine_tool.docker_env(state)
    del variables["PATH"]  # rebuilt by DockerEngine.env from the PATH of the moment
    try:
        bin_dir = str(state.root / "bin")
        cli = str(engine_tool.DOCKER_CLI)
        yield DockerEngine(variables, cli, image, state=state, bin_dir=bin_dir)
    finally:
        if started and not in_a_worker():
            engine_tool.stop(state)
