"""Slow tier, M6 for real: the default project rendered, installed and its pipeline run; its
service under `make serve`, `make simulate-traffic` and `make drift` as a team runs them; a real
Prometheus (Debian's `prometheus`, started here on loopback) scraping the service with the
project's own scrape config and alert rules, answering a PromQL query for every series the
service defines, and firing DataDriftDetected. Then, in that project, `make bench` with short
loads (every server it compares answers, every target is reported), and the docs' Alibi Detect
recipe where Alibi Detect installs (Python 3.11 and 3.12).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from test_monitoring_files import defined_series

from conftest import OPTION_SETS, TEMPLATE_DIR, render, run
from debian_tools import debian_tool
from project_shell import background, free_port, http, promql, user_env, wait_until

pytestmark = pytest.mark.slow

ANSWERS = OPTION_SETS["default"]
# Defined by the service but fed only by the prediction cache, which the default project lacks.
CACHE_ONLY = {"prediction_cache_lookups_total"}
ALIBI_PYTHONS = {"3.11", "3.12"}
# What `make bench` compares and the targets it reports, with monitoring on.
BENCH_SERVERS = {
    "constant FastAPI endpoint (floor)",
    "this service, monitoring off",
    "this service, prediction log off",
    "this service (FastAPI + ONNX Runtime)",
    "mlflow models serve (scikit-learn)",
}
BENCH_TARGETS = {
    "throughput vs MLflow",
    "p99 latency vs MLflow",
    "throughput vs constant endpoint, monitoring off",
    "throughput, metrics on vs off",
    "throughput, prediction log on vs off",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The default project, installed as a new user would, with its pipeline run."""
    folder = render(tmp_path_factory.mktemp("monitoring-stack"), ANSWERS)
    env = user_env(ANSWERS["python_version"])
    run(["make", "setup"], cwd=folder, env=env, timeout=1200)
    run(["make", "pipeline"], cwd=folder, env=env, timeout=900)
    return folder, env


def exposed_series(text: str) -> set[str]:
    """Names of the samples in a /metrics answer."""
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def prometheus_config(project: Path, api_port: int, folder: Path) -> Path:
    """The project's prometheus.yml, scraping the local service every second."""
    config = yaml.safe_load((project / "deploy" / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [
        str(project / "deploy" / "prometheus" / rule) for rule in config["rule_files"]
    ]
    [job] = config["scrape_configs"]
    assert job["job_name"] == "api"
    job["static_configs"] = [{"targets": [f"127.0.0.1:{api_port}"]}]
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_prometheus_scrapes_every_series_and_fires_the_drift_alert(project, tmp_path):
    folder, env = project
    binary = debian_tool("prometheus")
    api_port, prometheus_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    serve = ["make", "serve", f"API_PORT={api_port}"]
    with background(serve, folder, tmp_path / "serve.log", env=env) as server:
        wait_until(lambda: http("GET", f"{api}/ready")[0] == 200, "make serve", server,
                   tmp_path / "serve.log", 120)  # fmt: skip
        sent = run(["make", "simulate-traffic", f"API_URL={api}", "TRAFFIC_ARGS=--rate 0"],
                   cwd=folder, env=env).stdout  # fmt: skip
        assert re.search(r"shifted x1.5: 29\d answered", sent) or "300 answered" in sent, sent

        def logged() -> bool:  # the log is written once a second
            text = http("GET", f"{api}/metrics")[2]
            found = re.search(r"^prediction_log_records_total (\S+)", text, flags=re.MULTILINE)
            return found is not None and float(found.group(1)) >= 595

        wait_until(logged, "the prediction log", server, tmp_path / "serve.log", 30)
        drift = subprocess.run(["make", "drift"], cwd=folder, env=env, capture_output=True,
                               text=True, timeout=600)  # fmt: skip
        assert drift.returncode != 0, drift.stdout + drift.stderr  # exit 1: drift found
        assert "THE DATA HAS DRIFTED" in drift.stdout, drift.stdout + drift.stderr
        assert (folder / "reports" / "drift" / "quality.html").is_file()
        exposed = exposed_series(http("GET", f"{api}/metrics")[2])
        defined = set(defined_series(folder))
        assert exposed == defined - CACHE_ONLY, "the service exposes other series than defined"

        config = prometheus_config(folder, api_port, tmp_path)
        command = [
            binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ]  # fmt: skip
        log = tmp_path / "prometheus.log"
        prometheus = f"http://127.0.0.1:{prometheus_port}"
        with background(command, tmp_path, log) as process:
            wait_until(lambda: http("GET", f"{prometheus}/-/ready")[0] == 200, "prometheus",
                       process, log, 60)  # fmt: skip
            wait_until(lambda: promql(prometheus, 'up{job="api"} == 1'), "a scrape of the API",
                       process, log, 60)  # fmt: skip
            for name in sorted(exposed):
                result = wait_until(
                    lambda name=name: promql(prometheus, name), name, process, log, 30
                )
                assert all(series["metric"]["job"] == "api" for series in result), name
            firing = 'ALERTS{alertname="DataDriftDetected",alertstate="firing"}'
            wait_until(lambda: promql(prometheus, firing), "DataDriftDetected", process, log, 60)
            out_of_range = promql(prometheus, "sum(model_input_out_of_range_total)")
            assert float(out_of_range[0]["value"][1]) >= 5


def table(text: str, header: str) -> dict[str, list[str]]:
    """The rows of the Markdown table of `text` whose header starts with `header`, by first cell."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def test_make_bench_loads_every_server_and_reports_every_target(project, tmp_path):
    """`make bench` as the README gives it, with short loads: MLflow, the constant endpoint and
    the service with monitoring on, with the log off and with both off all answer every request
    of wrk, and the report holds each target of the issues as met or missed. (Its figures are
    for the default loads on a quiet machine: docs/m4-serving.md, docs/m6-monitoring.md.)"""
    folder, env = project
    debian_tool("wrk")
    report = tmp_path / "bench.md"
    loads = f"--seconds 1 --rounds 2 --mlflow-seconds 3 --output {report}"
    run(["make", "bench", f"BENCH_ARGS={loads}"], cwd=folder, env=env, timeout=600)
    text = report.read_text()
    assert "for 3 s. " in text and "in loads of 1 s for 2 rounds" in text, text
    servers, targets = table(text, "| server |"), table(text, "| target |")
    assert (set(servers), set(targets)) == (BENCH_SERVERS, BENCH_TARGETS), text
    for name, (requests_per_second, *_latency, errors, _cpu, _rss, _ready) in servers.items():
        assert float(requests_per_second.replace(",", "")) > 0 and errors == "0", name
    assert all(row[-1] in ("met", "**missed**") for row in targets.values()), text
    assert not (folder / "reports" / "bench.md").exists()  # --output was followed


def test_the_alibi_detect_recipe_runs_where_it_installs(project, tmp_path):
    folder, env = project
    if ANSWERS["python_version"] not in ALIBI_PYTHONS:
        pytest.skip(f"Alibi Detect 0.13 does not install on Python {ANSWERS['python_version']}")
    page = (TEMPLATE_DIR / "docs" / "m6-monitoring.md").read_text(encoding="utf-8")
    recipe = page[page.index("### Opt-in recipe") :]
    shell = re.search(r"```bash\n(.*?)```", recipe, flags=re.DOTALL).group(1)
    code = re.search(r"```python\n(.*?)```", recipe, flags=re.DOTALL).group(1)
    (folder / "alibi_check.py").write_text(code)
    lock = (folder / "uv.lock").read_bytes()
    # The project's uv first on PATH, as after `source .venv/bin/activate`.
    bin_env = {**env, "PATH": f"{folder / '.venv' / 'bin'}:{env['PATH']}"}
    detected = run(["bash", "-e", "-c", shell], cwd=folder, env=bin_env, timeout=1200).stdout
    # After the shifted traffic; NumPy wraps the p-values over several lines.
    assert re.search(r"^drift \[", detected, flags=re.MULTILINE), detected
    assert (folder / "uv.lock").read_bytes() == lock  # the project's environment is untouched
