"""The service under a real uvicorn, over raw sockets: what a test client cannot show.

A client that goes away in the middle of its upload, a body refused before it is even sent, and a
service without a model that stays up instead of crashing.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from served import Served

pytestmark = pytest.mark.slow

MAX_BODY_BYTES = 64 * 1024


def start_server(tmp_path: Path, bundle_dir: Path, examples: Path, ready: str) -> Served:
    """The service on `bundle_dir`, once `ready` (a path) answers."""
    env = {
        **os.environ,
        "API_BUNDLE_DIR": str(bundle_dir),
        "API_EXAMPLES_FILE": str(examples),
        "API_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
    }
    server = Served(env, tmp_path / "uvicorn.log")
    server.wait(ready)
    return server


@pytest.fixture
def server(tmp_path, api_bundle) -> Iterator[Served]:
    running = start_server(tmp_path, api_bundle.directory, api_bundle.examples_file, "/ready")
    try:
        yield running
    finally:
        running.stop()


def headers(content_type: str = "application/json", **extra: str) -> bytes:
    lines = ["POST /predict HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer_status(connection: socket.socket) -> int:
    """The status code of the first answer on `connection`."""
    connection.settimeout(10)
    received = b""
    while b"\r\n" not in received:
        chunk = connection.recv(4096)
        if not chunk:
            break
        received += chunk
    return int(received.split(b" ", 2)[1])


def test_client_leaving_mid_upload_is_not_an_error(server, api_bundle):
    uploads = [
        headers(Content_Length="20000") + b'{"' + b" " * 500,  # announced 20000 bytes, sent 503
        headers(Transfer_Encoding="chunked") + b"100\r\n" + b" " * 256 + b"\r\n",  # never ends
    ]
    for upload in uploads:
        with socket.create_connection(("127.0.0.1", server.port)) as connection:
            connection.sendall(upload)
            time.sleep(0.3)  # the service is now waiting for the rest of the body
    time.sleep(0.5)
    assert server.send(api_bundle.body(0))[0] == 200  # and it still serves
    log = server.stop()
    assert "ERROR" not in log, log
    assert "Traceback" not in log, log


def test_announced_oversized_body_is_refused_before_it_is_sent(server):
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(headers(Content_Length=str(MAX_BODY_BYTES + 1)))  # no body at all
        assert answer_status(connection) == 413


def test_chunked_oversized_body_is_refused(server, api_bundle):
    chunk = b"x" * 8192
    # The content type /predict reads (a form is not read at all under another type), and the
    # start of a real body, never finished: a picture's upload up to its closing boundary (whose
    # file then goes on and on), or a record but its last byte. Garbage alone would be refused as
    # a malformed form (400) before it grew too large.
    body, content_type = api_bundle.body(0)
    closing = body.rfind(b"\r\n--")
    start = body[: closing if closing > 0 else -1]
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(headers(content_type, Transfer_Encoding="chunked"))
        try:
            for part in [start] + [chunk] * (MAX_BODY_BYTES // len(chunk) + 2):
                connection.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        except OSError:
            pass  # the service answered and closed the connection before the end
        assert answer_status(connection) == 413
    assert "Traceback" not in server.stop()


def test_service_without_a_model_stays_up_and_says_why(tmp_path, api_bundle):
    no_bundle = tmp_path / "no-bundle"
    running = start_server(tmp_path, no_bundle, api_bundle.examples_file, "/health")
    try:
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(running.url("/ready"), timeout=5)
        assert not_ready.value.code == 503
        assert "there is no bundle" in json.load(not_ready.value)["reason"]
        assert running.send(api_bundle.body(0))[0] == 503
        assert running.process.poll() is None  # up, not in a crash loop
        urllib.request.urlopen(running.url("/health"), timeout=5).close()
    finally:
        log = running.stop()
    assert "there is no bundle" in log
