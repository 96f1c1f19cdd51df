"""M6 monitoring files of the renders that have them: the Grafana dashboard uses the provisioned
data source and only series that the service's metrics module defines; every alert has a firing
unit test; the docs name every alert (fast tier). Prometheus's configuration, alert rules and
their unit tests pass promtool (slow tier).

promtool has no wheel: it comes with Debian's `prometheus` package, which tests/debian_tools.py
installs when it is missing (as root with apt), so its test is in the slow tier, which installs
system tools; the fast tier needs none. Where promtool cannot be had, that test fails, never
skips: the slow tier claims the alert rules were tested.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import ALL_SETS, TEMPLATE_DIR, run
from debian_tools import debian_tool

MONITORED = [set_id for set_id, answers in ALL_SETS.items() if answers["use_monitoring"]]
# PromQL words that are not series names, in the expressions read below.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "increase", "irate",
    "histogram_quantile", "time", "absent", "and", "or", "unless", "le", "on", "ignoring",
}  # fmt: skip
# Series of Prometheus itself, not of the service.
PROMETHEUS_SERIES = {"up"}
# What prometheus_client exposes for each kind of metric, by suffix.
SUFFIXES = {
    "Counter": ("_total",),
    "Histogram": ("_bucket", "_count", "_sum"),
    "Gauge": ("",),
    "GaugeMetricFamily": ("",),
}


def metrics_module(project: Path) -> Path:
    [module] = project.glob("*/monitoring/metrics.py")
    return module


def defined_series(project: Path) -> dict[str, str]:
    """Series name -> metric family defined in the project's monitoring/metrics.py (and, for an
    image model, pictures.py), read from the literal names passed to Counter, Histogram, Gauge
    and GaugeMetricFamily."""
    modules = [metrics_module(project), *project.glob("*/monitoring/pictures.py")]
    trees = [ast.parse(module.read_text(encoding="utf-8")) for module in modules]
    series = {}
    for node in (node for tree in trees for node in ast.walk(tree)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        kind = node.func.id
        if kind in SUFFIXES and node.args and isinstance(node.args[0], ast.Constant):
            family = node.args[0].value
            series |= {f"{family}{suffix}": family for suffix in SUFFIXES[kind]}
    return series


def series_names(expression: str) -> set[str]:
    """The series a PromQL expression reads: the names written before `{` or `[`."""
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[)", expression))
    return names - PROMQL_WORDS


def dashboards(project: Path) -> list[dict]:
    folder = project / "deploy" / "grafana" / "dashboards"
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))]


def alert_rules(project: Path) -> list[dict]:
    document = yaml.safe_load((project / "deploy" / "prometheus" / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


@pytest.mark.slow
@pytest.mark.parametrize("set_id", MONITORED)
def test_prometheus_config_and_rules_pass_promtool(rendered, set_id):
    folder = rendered(set_id) / "deploy" / "prometheus"
    tool = debian_tool("promtool")
    run([tool, "check", "config", "prometheus.yml"], cwd=folder)
    run([tool, "check", "rules", "alerts.yml"], cwd=folder)
    tested = run([tool, "test", "rules", "alerts.test.yml"], cwd=folder)
    assert "SUCCESS" in tested.stdout + tested.stderr


@pytest.mark.parametrize("set_id", MONITORED)
def test_every_alert_is_unit_tested_firing(rendered, set_id):
    folder = rendered(set_id) / "deploy" / "prometheus"
    tests = yaml.safe_load((folder / "alerts.test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert fired == {rule["alert"] for rule in alert_rules(rendered(set_id))}


@pytest.mark.parametrize("set_id", MONITORED)
def test_alert_unit_tests_expect_the_rules_own_annotations(rendered, set_id):
    """promtool compares annotations word for word, so an edited description must be edited in
    alerts.test.yml too; this catches it in the fast tier, where promtool is absent."""
    folder = rendered(set_id) / "deploy" / "prometheus"
    annotations = {rule["alert"]: rule["annotations"] for rule in alert_rules(rendered(set_id))}
    tests = yaml.safe_load((folder / "alerts.test.yml").read_text())["tests"]
    expected = [
        (case["alertname"], alert["exp_annotations"])
        for test in tests
        for case in test["alert_rule_test"]
        for alert in case.get("exp_alerts", [])
        if "exp_annotations" in alert
    ]
    assert expected
    for name, written in expected:
        assert written == annotations[name], f"alerts.test.yml expects old annotations of {name}"


@pytest.mark.parametrize("set_id", MONITORED)
def test_dashboard_and_rules_read_only_series_the_service_defines(rendered, set_id):
    project = rendered(set_id)
    defined = defined_series(project)
    assert {"http_requests_total", "model_info", "model_drift_detected"} <= set(defined)
    expressions = [rule["expr"] for rule in alert_rules(project)]
    for dashboard in dashboards(project):
        expressions += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    named = set().union(*map(series_names, expressions)) - PROMETHEUS_SERIES
    assert len(named) >= 10
    missing = sorted(named - set(defined))
    assert not missing, f"not defined in monitoring/metrics.py: {missing}"


@pytest.mark.parametrize("set_id", MONITORED)
def test_dashboard_uses_the_provisioned_data_source(rendered, set_id):
    project = rendered(set_id)
    grafana = project / "deploy" / "grafana"
    provisioned = yaml.safe_load(
        (grafana / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    [source] = provisioned["datasources"]
    providers = yaml.safe_load(
        (grafana / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    [dashboard] = dashboards(project)
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"], panel["title"]
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, panel["title"]
    titles = " ".join(panel["title"].lower() for panel in panels)
    for topic in ("requests", "latency", "errors", "class", "drift"):
        assert topic in titles, f"no panel about {topic}"
    cache = any("cache" in panel["title"].lower() for panel in panels)
    assert cache == ALL_SETS[set_id]["use_redis_cache"]


def test_the_docs_page_explains_every_alert(rendered):
    page = (TEMPLATE_DIR / "docs" / "m6-monitoring.md").read_text(encoding="utf-8")
    for rule in alert_rules(rendered(MONITORED[0])):
        assert f"`{rule['alert']}`" in page, (
            f"docs/m6-monitoring.md does not explain {rule['alert']}"
        )
    assert (TEMPLATE_DIR / "docs" / "img" / "m6-drift-report.png").is_file()
