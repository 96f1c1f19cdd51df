"""Slow tier: the template's fast tier passes on a bare machine, as a user who is not root.

A Debian bookworm container holding python3, python3-venv, git and make (and the CA
certificates every Debian has) and nothing else: no uv, no Docker, no promtool, no template
virtualenv. A copy of the template, owned by an ordinary user, runs `make test-fast` there as
that user: `make venv` installs uv with pip and the dev group from PyPI, then the fast tier runs.
This is the promise docs/contributing.md makes for the fast tier ("python3, git and make, as any
user"), checked where nothing else could have helped.
"""

from __future__ import annotations

import re
import shutil
import uuid
from typing import TYPE_CHECKING

import pytest

from conftest import TEMPLATE_COPY_IGNORE, TEMPLATE_DIR

if TYPE_CHECKING:  # loaded for real by pytest_plugins, so that pytest may rewrite its asserts
    from docker_fixtures import DockerEngine

pytestmark = pytest.mark.slow
pytest_plugins = ["docker_fixtures"]

USER = "student"
# The base (tests/docker_fixtures.py) is a minimal bookworm with python3, python3-venv and
# ca-certificates (the machine's local CA added, as pip and uv need behind a re-signing proxy).
DOCKERFILE = f"""\
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
RUN apt-get update && apt-get install -y --no-install-recommends git make \\
    && rm -rf /var/lib/apt/lists/* \\
    && useradd --create-home --shell /bin/bash {USER}
COPY --chown={USER}:{USER} template/ /home/{USER}/template/
USER {USER}
WORKDIR /home/{USER}/template
"""
# uv reads its CA bundle from here; Debian's bundle holds the machine's local CA too.
ENVIRONMENT = {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "LANG": "C.UTF-8"}
ABSENT_TOOLS = ("uv", "docker", "dockerd", "promtool", "prometheus", "wrk", "sudo")


@pytest.fixture(scope="module")
def bare_image(docker_engine: DockerEngine, tmp_path_factory) -> str:
    """The bare machine with a copy of the template in its user's home; removed afterwards."""
    context = tmp_path_factory.mktemp("bare-machine")
    shutil.copytree(TEMPLATE_DIR, context / "template", ignore=TEMPLATE_COPY_IGNORE)
    (context / "Dockerfile").write_text(DOCKERFILE)
    tag = f"mlops-bare-machine:{uuid.uuid4().hex[:8]}"
    docker_engine.docker(
        "build", "--quiet", "--build-arg", f"BASE_IMAGE={docker_engine.base_image}",
        "--tag", tag, str(context), timeout=900,
    )  # fmt: skip
    yield tag
    docker_engine.docker("image", "rm", "--force", tag, check=False)


def run_in(engine: DockerEngine, image: str, script: str, timeout: float):
    environment = [arg for key, value in ENVIRONMENT.items() for arg in ("--env", f"{key}={value}")]
    return engine.docker("run", "--rm", *environment, image, "bash", "-c", script,
                         check=False, timeout=timeout)  # fmt: skip


def test_the_machine_is_bare_and_the_user_is_not_root(docker_engine, bare_image):
    done = run_in(docker_engine, bare_image, "id -u; python3 --version; git --version; make -v", 60)
    assert done.returncode == 0, done.stderr
    uid, python, git, make = done.stdout.splitlines()[:4]
    assert uid != "0" and python.startswith("Python 3.11") and git.startswith("git version")
    assert make.startswith("GNU Make")
    found = run_in(docker_engine, bare_image, f"command -v {' '.join(ABSENT_TOOLS)}", 60)
    assert found.stdout.strip() == "", f"not a bare machine: {found.stdout}"
    assert run_in(docker_engine, bare_image, "ls -d .venv .tools", 60).returncode != 0


def test_make_test_fast_passes_there(docker_engine, bare_image):
    done = run_in(docker_engine, bare_image, "make test-fast", timeout=1800)
    output = done.stdout + done.stderr
    summary = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    print(summary[-1:] or output[-2000:])
    assert done.returncode == 0, output[-6000:]
    assert "Installing uv into .tools/ with pip" in output, "uv did not come from a bare start"
    assert summary and re.search(r"\d+ passed", summary[-1]), output[-3000:]
    assert not re.search(r"\d+ (failed|errors?|skipped)", summary[-1]), summary[-1]
