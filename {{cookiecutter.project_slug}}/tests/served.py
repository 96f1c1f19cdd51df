"""The service under a real uvicorn on a free loopback port, for the slow tests that need one.

Test support, like scratch.py. `Served` starts `uvicorn --factory` on the app factory in a
process group of its own, `wait` returns once the service answers, and `stop` stops the whole
group (every worker) and returns what it logged, for the test's messages; `post` sends one JSON
request (`send` any body) and gives its status and body, refusals included. Ports and process
groups are the serving benchmark's (`benchmarks/servers.py`): its `free_port` and `stop_group`
serve both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from servers import free_port, stop_group

APP_FACTORY = "{{ cookiecutter.module_name }}.api.main:create_app"


class Served:
    """`uvicorn --workers N` serving APP_FACTORY with `env`, its output in the file `log`."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        *,
        workers: int = 1,
        python: Path | str = sys.executable,
        cwd: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.log = log
        command = [
            str(python), "-m", "uvicorn", "--factory", APP_FACTORY,
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
        ]  # fmt: skip
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=cwd,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stop() reaches every worker
            )

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def post(self, payload: object, path: str = "/predict") -> tuple[int, bytes]:
        """POST `payload` as JSON to `path`: the answer's status and body, whatever the status."""
        return self.send((json.dumps(payload).encode(), "application/json"), path)

    def send(self, body: tuple[bytes, str], path: str = "/predict") -> tuple[int, bytes]:
        """POST `body` (its bytes and content type) to `path`: the answer's status and body."""
        data, content_type = body
        request = urllib.request.Request(
            self.url(path), data=data, headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read()

    def wait(self, path: str = "/ready", in_a_row: int = 1, seconds: float = 60) -> None:
        """Until `path` answers 200 `in_a_row` times in a row (with several workers, 10 make it
        likely that each has started); stop and fail with the log if the server exits first or
        the time runs out."""
        deadline = time.monotonic() + seconds
        answered = 0
        while answered < in_a_row:
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not get ready:\n{self.stop()}")
            try:
                urllib.request.urlopen(self.url(path), timeout=2).close()
                answered += 1
            except OSError:
                answered = 0
                time.sleep(0.1)

    def stop(self) -> str:
        """Stop every process of the server, then return everything it logged."""
        if self.process.poll() is None:
            stop_group(self.process)
        return self.log.read_text()
