"""Slow tier, M6 monitoring in the compose stack: Prometheus, as compose.yaml's `monitoring`
profile defines it, scrapes the API container by its service name, on a real engine.

The default project is rendered, installed and its pipeline run (the install that
tests/test_delivery_docker.py makes, shared within a session); `make up SERVICES="api
prometheus"` builds the API image on the local Python base (tests/docker_fixtures.py) and starts
both services with compose.yaml's own command, mounts, volume, ports and healthchecks. After a
few predictions, Prometheus' HTTP API must show the target `api:8000` up, the request and
prediction counters at exactly the number sent although two uvicorn workers answer
(`API_WORKERS=2`: the image's multiprocess mode), the alert rules of the read-only mounted
deploy/prometheus/ loaded, and every prediction in the log on the `prediction-log` volume.

No registry is reachable, so PROMETHEUS_IMAGE names a local stand-in for prom/prometheus, built
from the same base: Debian's `prometheus` package (2.42 on bookworm, where compose.yaml names a
3.x release; the flags compose passes exist in both) installed with apt inside the image from the
machine's Debian mirror, plus wget for the healthcheck, with the official image's user (nobody)
and data folder. Its price: about 15 s and 330 MB once (Debian's web UI pulls in 220 MB of
JavaScript packages); the image is kept as a cache between runs.

Grafana is not started: no Grafana server is packaged for these machines. Its service is
checked by `docker compose config` (tests/test_delivery_files.py), its provisioning and dashboard
as files (tests/test_monitoring_files.py).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from containers import compose_services, wait
from test_delivery_docker import a_record, compose_up, installed_default, make
from test_monitoring_files import alert_rules

from project_shell import free_port, http, promql

if TYPE_CHECKING:  # loaded for real by pytest_plugins, so that pytest may rewrite its asserts
    from docker_fixtures import DockerEngine

pytestmark = pytest.mark.slow
pytest_plugins = ["docker_fixtures"]

PREDICTIONS = 7
# prometheus.yml scrapes every 15 s: a new count shows within two intervals.
SCRAPE_WAIT = 60
PROMETHEUS_IMAGE = "mlops-local/prometheus:test"
PROMETHEUS_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends prometheus wget \\
    && rm -rf /var/lib/apt/lists/* && mkdir -p /prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
"""


def local_prometheus(engine: DockerEngine, folder: Path) -> str:
    """Build the stand-in for prom/prometheus (cached by the engine after the first run)."""
    context = folder / "local-prometheus"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(PROMETHEUS_DOCKERFILE)
    build = engine.docker(
        "build", "--quiet", "--build-arg", f"BASE_IMAGE={engine.base_image}",
        "--tag", PROMETHEUS_IMAGE, str(context), check=False,
    )  # fmt: skip
    if build.returncode != 0:
        pytest.fail(
            "the local Prometheus image installs Debian's `prometheus` and `wget` with apt from "
            f"the machine's Debian mirror, and that failed:\n{build.stderr[-4000:]}",
            pytrace=False,
        )
    return PROMETHEUS_IMAGE


def value(prometheus: str, expression: str) -> float | None:
    """The single value of a query that sums to one series, or None."""
    result = promql(prometheus, expression)
    return float(result[0]["value"][1]) if len(result) == 1 else None


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_engine):
    """The default project with the API and Prometheus up under compose; yields (project, env,
    API URL, Prometheus URL) and takes the stack down with its volumes."""
    project, env = installed_default(tmp_path_factory, docker_engine)
    make(project, env, "pipeline")  # nothing to do, as `make pipeline` says
    api_port, prometheus_port = free_port(), free_port()
    api_image = f"m6-compose:{uuid.uuid4().hex[:8]}"
    env.update(
        COMPOSE_PROJECT_NAME=f"m6-monitoring-{uuid.uuid4().hex[:8]}",
        # The Makefile's default; set here too so that `docker compose ps/logs/down` see it.
        COMPOSE_PROFILES="monitoring",
        PROMETHEUS_IMAGE=local_prometheus(docker_engine, project.parent),
        PROMETHEUS_PORT=str(prometheus_port),
        # Two uvicorn workers in the API container: the counts Prometheus reads must be their
        # sum (the image's multiprocess mode), whichever worker answers a scrape.
        API_WORKERS="2",
    )
    try:
        compose_up(
            project, env, "SERVICES=api prometheus", f"API_PORT={api_port}",
            f"BASE_IMAGE={docker_engine.base_image}", f"IMAGE={api_image}",
        )  # fmt: skip
        yield project, env, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{prometheus_port}"
    finally:
        down = ["docker", "compose", "down", "--volumes", "--timeout", "10"]
        subprocess.run(down, cwd=project, env=env, capture_output=True, timeout=300, check=False)
        docker_engine.docker("image", "rm", "--force", api_image, check=False)


def test_api_and_prometheus_are_healthy_on_loopback(stack, docker_engine):
    project, env, _api, _prometheus = stack
    services = compose_services(project, env)
    assert {s["Service"]: s["Health"] for s in services} == {
        "api": "healthy",
        "prometheus": "healthy",
    }
    for service in services:
        for publisher in service.get("Publishers") or []:
            assert publisher["PublishedPort"] == 0 or publisher["URL"] == "127.0.0.1"
    [prometheus] = [s for s in services if s["Service"] == "prometheus"]
    [inspected] = json.loads(docker_engine.docker("inspect", prometheus["ID"]).stdout)
    mounts = {mount["Destination"]: mount for mount in inspected["Mounts"]}
    source = Path(mounts["/etc/prometheus"]["Source"]).resolve()
    assert source == (project / "deploy" / "prometheus").resolve()
    assert mounts["/etc/prometheus"]["RW"] is False
    assert mounts["/prometheus"]["Type"] == "volume"


def test_prometheus_scrapes_the_api_container_by_its_service_name(stack):
    project, _env, api, prometheus = stack
    up = wait(lambda: promql(prometheus, 'up{job="api"} == 1'), SCRAPE_WAIT, step=1)
    assert up, f"no successful scrape of the API: {promql(prometheus, 'up')}"
    assert [series["metric"]["instance"] for series in up] == ["api:8000"]

    record = a_record(project)
    for _ in range(PREDICTIONS):
        status, _headers, text = http("POST", f"{api}/predict", record)
        assert status == 200, text
    requests = 'sum(http_requests_total{job="api",route="/predict",method="POST",status="200"})'
    predictions = 'sum(model_predictions_total{job="api"})'

    def counted() -> bool:
        return value(prometheus, requests) == value(prometheus, predictions) == PREDICTIONS

    assert wait(counted, SCRAPE_WAIT, step=1), (
        f"after {SCRAPE_WAIT} s Prometheus holds {value(prometheus, requests)} requests and "
        f"{value(prometheus, predictions)} predictions, not {PREDICTIONS}"
    )


def test_the_api_container_writes_its_prediction_log_to_the_volume(stack):
    """Every prediction reaches the log in the `prediction-log` volume (none dropped as
    unwritable), and the README's copy command brings it out for `make drift`."""
    project, env, _api, prometheus = stack
    logged = 'sum(prediction_log_records_total{job="api"})'
    assert wait(lambda: value(prometheus, logged) == PREDICTIONS, SCRAPE_WAIT, step=1), (
        f"{value(prometheus, logged)} predictions logged, not {PREDICTIONS}; dropped: "
        f"{promql(prometheus, 'prediction_log_dropped_records_total')}"
    )
    copied = project / "data" / "monitoring"
    copied.mkdir(parents=True, exist_ok=True)
    command = ["docker", "compose", "cp", "api:/var/lib/predictions/.", str(copied)]
    subprocess.run(command, cwd=project, env=env, check=True, capture_output=True, timeout=60)
    with contextlib.closing(sqlite3.connect(copied / "predictions.sqlite")) as log:
        assert log.execute("select count(*) from predictions").fetchone()[0] == PREDICTIONS


def test_prometheus_loaded_the_projects_alert_rules(stack):
    project, _env, _api, prometheus = stack
    status, _headers, text = http("GET", f"{prometheus}/api/v1/rules?type=alert")
    assert status == 200, text
    loaded = {
        rule["name"] for group in json.loads(text)["data"]["groups"] for rule in group["rules"]
    }
    assert loaded == {rule["alert"] for rule in alert_rules(project)}
