"""Prometheus metrics at /metrics: exact values after known requests, route templates as labels,
drift.json published, the switch, and the dashboard and alert rules naming only real series.

Under a real uvicorn, with one and with two workers: test_metrics_server.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.module_name }}.api.main import (
    create_app,
)
from {{ cookiecutter.module_name }}.config import (
    PROJ_ROOT,
)
from {{ cookiecutter.module_name }}.monitoring.metrics import (
    ServiceMetrics,
)
from {{ cookiecutter.module_name }}.monitoring.summary import (
    DriftSummary,
    FeatureDrift,
    Quality,
    write_summary,
)

# PromQL words that are not series names, in the expressions the tests read.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "increase", "irate",
    "histogram_quantile", "time", "absent", "and", "or", "unless", "le", "on", "ignoring",
}  # fmt: skip
# Series of Prometheus itself, not of the service.
PROMETHEUS_SERIES = {"up"}


@pytest.fixture(autouse=True)
def monitoring_files(tmp_path, monkeypatch) -> Path:
    """The folder of the prediction log and drift.json of these tests (see `api_settings`)."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    return tmp_path


def scrape(client: TestClient) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def drift_summary(features: list[str], drifted: set[str]) -> DriftSummary:
    return DriftSummary(
        created_at=datetime(2026, 5, 1, 12, 0, tzinfo=UTC),
        current_source="test",
        current_rows=200,
        reference_rows=455,
        model_versions=[3],
        drift_share=len(drifted) / len(features),
        drift_share_threshold=0.5,
        dataset_drift=len(drifted) >= len(features) / 2,
        features={
            name: FeatureDrift(
                score=0.01 if name in drifted else 0.5,
                method="K-S p_value",
                threshold=0.05,
                drifted=name in drifted,
            )
            for name in features
        },
        quality=Quality(labelled_rows=150, accuracy=0.8, reference_accuracy=0.95),
    )


def test_metrics_answer_at_metrics_without_a_redirect(client):
    response = client.get("/metrics", follow_redirects=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE http_requests_total counter" in response.text
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_counts_after_known_requests_are_exact(client, api_bundle):
    for index in range(3):
        assert client.post("/predict", **api_bundle.single(index)).status_code == 200
    assert client.post("/predict/batch", **api_bundle.several([3, 4])).status_code == 200
    assert client.get("/health").status_code == 200

    samples = scrape(client)
    assert value(samples, "http_requests_total", route="/predict", method="POST", status="200") == 3
    batch = value(
        samples, "http_requests_total", route="/predict/batch", method="POST", status="200"
    )
    assert batch == 1
    assert value(samples, "http_requests_total", route="/health", method="GET", status="200") == 1
    latency = value(samples, "http_request_duration_seconds_count", route="/predict", method="POST")
    assert latency == 3
    assert value(samples, "model_inference_duration_seconds_count") == 4  # 3 single, 1 batch
    predicted = {label: api_bundle.labels[:5].count(label) for label in api_bundle.classes}
    for label, count in predicted.items():
        assert value(samples, "model_predictions_total", **{"class": label}) == count
    identity = {"model": api_bundle.registered_model, "version": str(api_bundle.model_version)}
    [info] = [labels for (name, labels) in samples if name == "model_info"]
    assert dict(info).items() >= identity.items()
    assert len(dict(info)["sha256"]) == 64


def test_inputs_out_of_range_are_counted_per_feature(client, api_bundle):
    numeric = api_bundle.numeric  # skips on a model without numeric features
    if len(numeric) < 2:
        pytest.skip("needs two numeric features")
    records = api_bundle.records
    first, second, *others = numeric
    low, high = api_bundle.ranges[first]
    far = high + 100 * (high - low)
    # Two features out of range in one record, one in another; a missing field is no range.
    two_out = {**records[0], first: far, second: -1e9}
    assert client.post("/predict", json=two_out).status_code == 422
    assert client.post("/predict", json={**records[1], first: far}).status_code == 422
    incomplete = dict(records[2])
    incomplete.pop(api_bundle.features[-1])
    assert client.post("/predict", json=incomplete).status_code == 422

    samples = scrape(client)
    assert value(samples, "http_requests_total", route="/predict", method="POST", status="422") == 3
    assert value(samples, "model_input_out_of_range_total", feature=first) == 2
    assert value(samples, "model_input_out_of_range_total", feature=second) == 1
    for other in others:
        assert value(samples, "model_input_out_of_range_total", feature=other) == 0


def test_route_labels_are_route_templates(client):
    client.get("/docs-static/no-such-file.js")
    client.get("/no-such-page")
    client.get("/predict")  # a route, but not this method
    samples = scrape(client)
    static = value(samples, "http_requests_total", route="/docs-static/{path}", method="GET",
                   status="404")  # fmt: skip
    assert static == 1
    assert value(samples, "http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert value(samples, "http_requests_total", route="/predict", method="GET", status="405") == 1
    routes = {dict(labels)["route"] for (name, labels) in samples if name == "http_requests_total"}
    assert "/no-such-page" not in routes  # a raw path would make a label per typo


def test_an_escaped_exception_is_counted_as_500(api_settings):
    app = create_app(api_settings)

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/broken").status_code == 500
        samples = scrape(client)
    assert value(samples, "http_requests_total", route="/broken", method="GET", status="500") == 1


def test_drift_summary_is_published_and_follows_the_file(client, api_bundle, monitoring_files):
    path = monitoring_files / "drift.json"
    assert value(scrape(client), "model_drift_report_timestamp_seconds") is None
    features = api_bundle.features
    half = features[: (len(features) + 1) // 2]  # at least half; never the last of several
    write_summary(path, drift_summary(features, drifted=set(half)))
    samples = scrape(client)
    assert (
        value(samples, "model_drift_report_timestamp_seconds")
        == datetime(2026, 5, 1, 12, 0, tzinfo=UTC).timestamp()
    )
    assert value(samples, "model_dataset_drift_detected") == 1
    assert value(samples, "model_drift_share") == pytest.approx(len(half) / len(features))
    assert value(samples, "model_drift_detected", feature=features[0]) == 1
    assert value(samples, "model_drift_detected", feature=features[-1]) == (len(features) == 1)
    assert value(samples, "model_drift_score", feature=features[0]) == 0.01
    assert value(samples, "model_accuracy", data="labelled") == 0.8
    assert value(samples, "model_accuracy", data="reference") == 0.95

    write_summary(path, drift_summary(features, drifted=set()))
    assert value(scrape(client), "model_dataset_drift_detected") == 0
    path.write_text("{ half written")
    assert value(scrape(client), "model_drift_share") is None
    path.unlink()
    assert value(scrape(client), "model_drift_share") is None


def test_cache_answers_are_counted_by_record_from_the_header():
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry)
    for header in (b"hit", b"miss", b"2/5", b"not the cache's"):
        metrics.count_cache(header)
    assert registry.get_sample_value("prediction_cache_lookups_total", {"result": "hit"}) == 3
    assert registry.get_sample_value("prediction_cache_lookups_total", {"result": "miss"}) == 4


def test_metrics_can_be_turned_off(api_settings, api_bundle):
    settings = api_settings.model_copy(update={"metrics_enabled": False})
    with TestClient(create_app(settings)) as client:
        assert client.post("/predict", **api_bundle.single(0)).status_code == 200
        assert client.get("/metrics").status_code == 404


def test_the_service_imports_neither_evidently_nor_pandas(api_settings):
    code = (
        "import sys; from pathlib import Path; "
        f"from {create_app.__module__} import create_app; "
        "from fastapi.testclient import TestClient; "
        f"from {api_settings.__class__.__module__} import Settings; "
        f"app = create_app(Settings(bundle_dir=Path({str(api_settings.bundle_dir)!r}))); "
        "TestClient(app).__enter__().get('/metrics'); "
        "print(sorted(m for m in ('evidently', 'pandas', 'sklearn') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def series_names(expression: str) -> set[str]:
    """The series an expression reads: names before a `{` or a `[`, or bare ones."""
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[)", expression))
    names |= set(
        re.findall(r"\b([a-z_]+_(?:total|seconds|bucket|info|detected|share))\b", expression)
    )
    return names - PROMQL_WORDS


def dashboard_expressions() -> list[str]:
    found = []
    for path in sorted((PROJ_ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            found += [target["expr"] for target in panel.get("targets", [])]
    return found


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((PROJ_ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_dashboard_and_alert_rules_name_only_series_the_service_exposes(
    client, api_bundle, monitoring_files
):
    write_summary(monitoring_files / "drift.json", drift_summary(api_bundle.features, set()))
    text = client.get("/metrics").text
    exposed = {sample.name for f in text_string_to_metric_families(text) for sample in f.samples}
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)", text, flags=re.MULTILINE):
        exposed.add(name)  # counters without samples yet: `prediction_log_dropped_records_total`
        if kind == "histogram":
            exposed |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    expressions = dashboard_expressions() + alert_expressions()
    assert len(expressions) >= 10
    named = set().union(*map(series_names, expressions)) - PROMETHEUS_SERIES
    assert named, "no series found in the expressions"
    assert named <= exposed, f"not on /metrics: {sorted(named - exposed)}"
