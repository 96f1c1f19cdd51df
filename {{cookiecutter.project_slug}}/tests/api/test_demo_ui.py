"""The demo page (ui/app.py) driven headless by Streamlit's AppTest against the service under a
real uvicorn: the champion it shows, a prediction from its form, one line when the service is
down, and the explanation drawn from an answer of /explain's shape (a small fake service).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from served import Served, free_port
from streamlit.testing.v1 import AppTest

from {{ cookiecutter.module_name }}.config import (
    PROJ_ROOT,
)

pytestmark = pytest.mark.slow

APP = PROJ_ROOT / "ui" / "app.py"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, api_bundle) -> Iterator[Served]:
    env = {
        **os.environ,
        "API_BUNDLE_DIR": str(api_bundle.directory),
        "API_EXAMPLES_FILE": str(api_bundle.examples_file),
    }
    running = Served(env, tmp_path_factory.mktemp("demo-ui") / "uvicorn.log")
    running.wait("/ready")
    try:
        yield running
    finally:
        running.stop()


def page(monkeypatch: pytest.MonkeyPatch, url: str) -> AppTest:
    """The demo page calling the service at `url`, after its first run."""
    monkeypatch.setenv("API_URL", url)
    return AppTest.from_file(str(APP), default_timeout=30).run()


def fill_and_send(app: AppTest, api_bundle) -> AppTest:
    """The page after sending the first record of `api_bundle` through its form."""
{%- if cookiecutter.task == "image" %}
    return app.file_uploader[0].upload(*api_bundle.upload(0)).run()
{%- else %}
    record = api_bundle.records[0]
    for name in api_bundle.ranges:
        app.number_input(key=name).set_value(record[name])
    for name in api_bundle.categories:
        app.selectbox(key=name).set_value(record[name])
    for name in api_bundle.texts:
        app.text_area(key=name).input(record[name])
    return app.run()
{%- endif %}


def test_the_page_shows_the_champion_and_a_prediction(monkeypatch, service, api_bundle):
    app = page(monkeypatch, service.url())
    assert not app.exception and not app.error
    title = app.title[0].value
    assert title == f"{api_bundle.registered_model}, version {api_bundle.model_version}"
    assert app.metric, "the champion's test metrics are shown"

    app = fill_and_send(app, api_bundle)
    assert not app.exception and not app.error, [e.value for e in app.error]
    status, body = service.send(api_bundle.body(0))
    assert status == 200
    expected = json.loads(body)["label"]
{%- if cookiecutter.use_explain_api %}
    # This service has /explain (use_explain_api): the contributions follow the probabilities.
    assert [s.value for s in app.subheader] == [f"Prediction: {expected}", f"Why {expected}"]
    assert len(app.get("vega_lite_chart")) == 2
{%- else %}
    assert [s.value for s in app.subheader] == [f"Prediction: {expected}"]  # no /explain here
    assert len(app.get("vega_lite_chart")) == 1  # the class probabilities
{%- endif %}


def test_a_stopped_service_is_one_line_on_the_page(monkeypatch):
    app = page(monkeypatch, f"http://127.0.0.1:{free_port()}")
    assert not app.exception
    [error] = app.error
    assert "does not answer" in error.value
    assert "\n" not in error.value and "Traceback" not in error.value
    assert not app.title


class FakeService(BaseHTTPRequestHandler):
    """A service with /explain: /model from a real bundle, fixed answers of the contract's shape."""

    metadata: ClassVar[dict] = {}

    def do_GET(self) -> None:
        paths = {"/predict": {}, "/explain": {}}
        self.answer(self.metadata if self.path == "/model" else {"paths": paths})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        first, *others = self.metadata["classes"]
        if self.path == "/predict":
            chances = {first: 0.9, **dict.fromkeys(others, 0.1 / len(others))}
            self.answer({"label": first, "probabilities": chances, "model_version": 3})
        else:
            parts = [{"name": "part one", "value": 0.4}, {"name": "part two", "value": -0.1}]
            self.answer({"label": first, "method": "occlusion", "contributions": parts})

    def answer(self, document: dict) -> None:
        body = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # quiet
        pass


def test_the_explanation_is_shown_when_the_service_has_one(monkeypatch, api_bundle):
    FakeService.metadata = json.loads((Path(api_bundle.directory) / "metadata.json").read_text())
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeService)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        app = fill_and_send(page(monkeypatch, f"http://127.0.0.1:{server.server_port}"), api_bundle)
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert not app.exception and not app.error, [e.value for e in app.error]
    label = FakeService.metadata["classes"][0]
    assert [s.value for s in app.subheader] == [f"Prediction: {label}", f"Why {label}"]
    assert any("occlusion" in caption.value for caption in app.caption)
    assert len(app.get("vega_lite_chart")) == 2  # probabilities, then contributions
