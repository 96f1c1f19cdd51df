"""`make simulate-traffic` for an image model: the test split's picture files sent as multipart
uploads, then drifted copies, then files of a type the service refuses, each answered picture's
true label written as it comes. A loopback stand-in of the service records what it receives.
"""

from __future__ import annotations

import csv
import email.parser
import email.policy
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from {{ cookiecutter.module_name }}.monitoring import (
    pictures,
    traffic,
)


def uploaded(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    """(field name, filename, bytes) of each file of a multipart/form-data body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    return [
        (part.get_param("name", header="content-disposition"), part.get_filename(),
         part.get_payload(decode=True))
        for part in message.iter_parts()
    ]  # fmt: skip


class StandIn(BaseHTTPRequestHandler):
    """/model answers `model`; /predict answers 415 for a BMP file, else the label "3"."""

    received: list[tuple[str, str, bytes]]
    model: dict

    def do_GET(self) -> None:
        self.answer(200, self.model)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        files = uploaded(self.headers["Content-Type"], body)
        self.received.extend(files)
        if all(name.endswith(".png") for _, name, _ in files):
            self.answer(200, {"label": "3"})
        else:
            self.answer(415, {"detail": "not a PNG or JPEG image"})

    def answer(self, status: int, document: dict) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def stand_in(monitored):
    """The stand-in service of the monitored model on a free loopback port: its URL and what it
    received."""
    received: list[tuple[str, str, bytes]] = []
    model = {"target": monitored.target, "features": [{"kind": "image", "name": "image"}]}
    handler = type("Handler", (StandIn,), {"received": received, "model": model})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_pictures_are_uploaded_then_shifted_then_refused(monitored, stand_in, tmp_path):
    url, received = stand_in
    ground_truth = tmp_path / "ground_truth.csv"
    sent = CliRunner().invoke(
        traffic.app,
        [
            "--url", url, "--normal", "6", "--shifted", "4", "--out-of-range", "2", "--rate", "0",
            "--data", str(monitored.test_file), "--ground-truth", str(ground_truth),
        ],
    )  # fmt: skip
    assert sent.exit_code == 0, sent.output
    assert "normal: 6 answered" in sent.output and "shifted x1.5: 4 answered" in sent.output
    assert "not PNG or JPEG: 0 answered, 2 rejected" in sent.output
    assert len(received) == 12 and {field for field, _, _ in received} == {"image"}
    sizes = [Image.open(io.BytesIO(data)).size for _, _, data in received]
    formats = [Image.open(io.BytesIO(data)).format for _, _, data in received]
    assert sizes[:6] == [(8, 8)] * 6  # the test split's own files
    assert sizes[6:10] == [(12, 12)] * 4  # shifted: 1.5 times larger
    assert formats == ["PNG"] * 10 + ["BMP"] * 2
    test_files = {Path(p).read_bytes() for p in monitored.test_split()["image"]}
    assert all(data in test_files for _, _, data in received[:6])
    with ground_truth.open() as handle:
        labelled = list(csv.DictReader(handle))
    assert len(labelled) == 10  # every answered picture, none of the refused ones
    truth = dict(zip(monitored.test_split()["image"].map(lambda p: Path(p).name),
                     monitored.test_split()[monitored.target], strict=True))  # fmt: skip
    assert [row["label"] for row in labelled[:6]] == [truth[name] for _, name, _ in received[:6]]


def test_a_shifted_picture_is_larger_and_washed_out(monitored):
    source = Path(monitored.test_split()["image"][0])
    original = Image.open(source)
    moved = Image.open(io.BytesIO(pictures.shifted(source.read_bytes(), 2.0)))
    assert moved.size == (original.width * 2, original.height * 2)
    low, high = moved.getextrema()
    assert low >= 96 and high <= 96 + 255 * 0.5 + 1  # a grey floor, half the contrast


def test_a_missing_picture_stops_the_run_in_one_line(monitored, stand_in, tmp_path):
    url, _ = stand_in
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"image,{monitored.target}\nnowhere/missing.png,3\n")
    sent = CliRunner().invoke(traffic.app, ["--url", url, "--data", str(manifest)])
    assert sent.exit_code == 1
    assert "cannot read the model's features from" in sent.output
    assert "missing.png" in sent.output and "Traceback" not in sent.output
