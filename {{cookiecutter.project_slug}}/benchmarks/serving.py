"""Benchmark of the prediction service against `mlflow models serve` on the same model.

Compares, on loopback ports, this service (ONNX Runtime, the bundle in models/bundle/),
`mlflow models serve --env-manager local` on `models:/<registered model>@champion` of the
project's MLflow store (the version that `promote` made the champion, which models/bundle holds),
and a FastAPI endpoint that returns a constant (the floor: what uvicorn and FastAPI cost with no
model at all), each with the same uvicorn options and one worker. Each gets the same load from wrk
(16 connections, one single-record POST body from the test split) after a short warm-up.
MLflow, slow to start and far behind, is measured once, alone, for 5 s. The others run side by
side, idle but the one under load, and take turns in loads of 2 s for `--rounds` rounds, every
other round in reverse order, so that the two servers of each ratio are measured one just after
the other: a ratio is the median of the ratios within each round, on which a drift of the
machine's speed weighs little. Many short loads rather than a few long ones, for the same time:
measured on a shared 2-core machine, the ratio of two loads of 2 s one after the other spread no
more from round to round than that of two loads of 5 s (the log's cost: middle half 21 points
wide over 48 pairs, against 23 over 12), so 16 rounds of 2 s give a median about 1.6 times as
steady as 6 rounds of 5 s. The report gives how far those ratios spread: on a shared machine,
often as far as a cost of 10%.
{%- if cookiecutter.use_monitoring %}
Two variants of this service take their turns too, for the cost of monitoring: with its metrics
and prediction log off (API_METRICS_ENABLED, API_PREDICTION_LOG_ENABLED), and with the log alone
off; the metrics' cost is the second against the first, the log's this service against the
second.
{%- endif %}

Prints and writes to reports/bench.md: requests per second, p50/p99 latency, server CPU time per
request, peak memory (RSS of the server's whole process tree) and time from launch to ready, then
each target of the issue (TARGETS below) as met or missed, with the figures behind it. A
benchmark, not a test: it asserts nothing, it reports, including the targets it misses.

    make pipeline && make bench       # about 3 minutes
    uv run python benchmarks/serving.py --help

Needs wrk (`apt-get install wrk`) and a finished pipeline (mlflow.db with a champion, the bundle).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from statistics import median, quantiles
from typing import Annotated

import typer

from {{ cookiecutter.module_name }}.bundle import (
    BundleError,
    BundleMetadata,
    read_verified,
)
from {{ cookiecutter.module_name }}.config import (
    BUNDLE_DIR,
    CHAMPION_ALIAS,
    PROJ_ROOT,
    REPORTS_DIR,
    TEST_FILE,
    mlflow_tracking_uri,
)

# Ports and stopping a server's process group: test support (tests/served.py), shared with the
# slow tests that start the service.
sys.path.insert(0, str(PROJ_ROOT / "tests"))
from served import free_port, stop_group

app = typer.Typer(add_completion=False, help=__doc__)

BENCH_FILE = REPORTS_DIR / "bench.md"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Target:
    """One target of the issue: `ratio` (`subject` against `reference`) must reach `needed`."""

    key: str
    title: str
    reference: str  # "mlflow" or "floor"
    metric: str  # a field of Result
    higher_is_better: bool
    needed: float  # the ratio, better-over-worse, that meets the target
    wording: str
    subject: str = "ours"  # this service, or one of its variants


# The targets, on the default model, one worker, 2 cores.
TARGETS = [
    Target("throughput", "throughput vs MLflow", "mlflow", "requests_per_second", True, 50.0,
           "at least 50x"),
    Target("p99", "p99 latency vs MLflow", "mlflow", "p99_ms", False, 10.0, "at most 1/10"),
{%- if cookiecutter.use_monitoring %}
    # The serving path alone (M4's target); what monitoring adds has targets of its own below.
    Target("floor", "throughput vs constant endpoint, monitoring off", "floor",
           "requests_per_second", True, 0.55, "at least 55%", subject="unmonitored"),
{%- else %}
    Target("floor", "throughput vs constant endpoint", "floor", "requests_per_second", True, 0.55,
           "at least 55%"),
{%- endif %}
{%- if cookiecutter.use_monitoring %}
    # What monitoring costs: the metrics (prediction log off in both), then the prediction log
    # (metrics on in both).
    Target("metrics", "throughput, metrics on vs off", "unmonitored", "requests_per_second",
           True, 0.90, "at least 90%", subject="unlogged"),
    Target("logging", "throughput, prediction log on vs off", "unlogged", "requests_per_second",
           True, 0.90, "at least 90%"),
{%- endif %}
]  # fmt: skip

FLOOR_APP = """
from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/health")
async def health():
    return {"status": "ok"}


@app.post("/predict")
async def predict(request: Request):
    await request.body()
    return {"label": "constant", "probabilities": {"constant": 1.0}, "model_version": 0}
"""


@dataclass
class Server:
    name: str
    command: list[str]
    ready_url: str
    predict_url: str
    body: str
    env: dict[str, str]


@dataclass
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float
    peak_rss_mb: float
    ready_seconds: float


def median_result(results: list[Result]) -> Result:
    """Each figure's median over rounds (figures of one server, measured several times); the
    memory's peak over all of them."""
    values = {
        field.name: median(getattr(r, field.name) for r in results)
        for field in fields(Result)
        if field.name not in ("name", "errors", "peak_rss_mb")
    }
    return Result(
        name=results[0].name,
        errors=sum(r.errors for r in results),
        peak_rss_mb=max(r.peak_rss_mb for r in results),
        **values,
    )


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (MLflow forks a uvicorn process)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    family, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in family]
        family.update(children)
        frontier.extend(children)
    return sorted(family)


def tree_rss_mb(root: int) -> float:
    """Resident memory of the process tree of `root`, in MB."""
    total = 0
    for pid in process_tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        total += int(rss.group(1)) if rss else 0
    return total / 1024


def tree_cpu_seconds(root: int) -> float:
    """CPU time (user + system) used so far by the process tree of `root`."""
    ticks = 0
    for pid in process_tree(root):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(stat[11]) + int(stat[12])  # utime, stime
    return ticks / CLOCK_TICKS


class PeakMemory(threading.Thread):
    """Samples the process tree's RSS every 100 ms and keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0.0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, tree_rss_mb(self.pid))
            time.sleep(0.1)

    def stop(self) -> float:
        self.running = False
        self.join()
        return self.peak


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 180) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} was not ready after {timeout} s")


def check_answer(server: Server) -> None:
    request = urllib.request.Request(
        server.predict_url, data=server.body.encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 200:
            raise RuntimeError(f"{server.name} answered {response.status}")


def to_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, body: str, seconds: int, connections: int, folder: Path) -> dict:
    script = folder / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{body}]==]\n"
    )
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    output = done.stdout
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)", output, re.MULTILINE))
    requests = re.search(r"(\d+) requests in", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    if socket_errors:
        print(f"  wrk: socket errors {socket_errors.group(1)}")
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": to_ms(percentiles["50"]),
        "p99_ms": to_ms(percentiles["99"]),
        "errors": int(errors.group(1)) if errors else 0,
        "requests": int(requests.group(1)) if requests else 0,
    }


@dataclass
class Running:
    """A server started by `launch`: stop it with `stop_group(running.process)`."""

    server: Server
    process: subprocess.Popen
    ready_seconds: float
    peak_rss_mb: float  # so far: memory is sampled during the warm-up and each load


def launch(server: Server, connections: int, folder: Path) -> Running:
    """Start `server`, wait until it is ready, check one answer and warm it up (2 s of load)."""
    print(f"- {server.name}: starting")
    process = subprocess.Popen(
        server.command,
        env=server.env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so the whole tree stops with it
    )
    memory = PeakMemory(process.pid)
    memory.start()
    try:
        ready = wait_ready(server.ready_url, process)
        check_answer(server)
        run_wrk(server.predict_url, server.body, 2, connections, folder)
    except BaseException:
        stop_group(process)
        raise
    finally:
        peak = memory.stop()
    return Running(server, process, ready, peak)


def load(running: Running, seconds: int, connections: int, folder: Path) -> Result:
    """One measured load of a running server. Only the server under load has its memory sampled:
    a sampler reads /proc and takes CPU from the server."""
    server, pid = running.server, running.process.pid
    memory = PeakMemory(pid)
    memory.start()
    try:
        cpu_before = tree_cpu_seconds(pid)
        figures = run_wrk(server.predict_url, server.body, seconds, connections, folder)
        cpu = tree_cpu_seconds(pid) - cpu_before
    finally:
        running.peak_rss_mb = max(running.peak_rss_mb, memory.stop())
    requests = figures.pop("requests")
    result = Result(
        name=server.name,
        peak_rss_mb=running.peak_rss_mb,
        ready_seconds=running.ready_seconds,
        cpu_us_per_request=1e6 * cpu / requests if requests else float("nan"),
        **figures,
    )
    print(
        f"  {server.name}: {result.requests_per_second:.0f} req/s, p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms, {result.cpu_us_per_request:.0f} us CPU per request, "
        f"peak RSS {result.peak_rss_mb:.0f} MB, ready in {result.ready_seconds:.2f} s"
    )
    return result


def measure(server: Server, seconds: int, connections: int, folder: Path) -> Result:
    """Start `server`, load it once, stop it."""
    running = launch(server, connections, folder)
    try:
        return load(running, seconds, connections, folder)
    finally:
        stop_group(running.process)


def sample_record(metadata: BundleMetadata) -> list[float]:
    """The first row of the test split inside every training range, in the model's feature
    order (the service refuses values far outside them); else the middle of the ranges."""
    with TEST_FILE.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            values = [float(row[feature.name]) for feature in metadata.features]
            if all(f.min <= v <= f.max for f, v in zip(metadata.features, values, strict=True)):
                return values
    return [(feature.min + feature.max) / 2 for feature in metadata.features]


def cpu_model() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return found.group(1).strip() if found else platform.processor() or "unknown CPU"


def ratio_text(target: Target, value: float) -> str:
    """`value` (better over worse) as the target words it: 94x, 66%, 1/118."""
    if target.reference != "mlflow":
        return f"{100 * value:.1f}%"  # one decimal: 69.6% must not read as the 70% it misses
    number = f"{value:.0f}" if value >= 10 else f"{value:.1f}"
    return f"{number}x" if target.higher_is_better else f"1/{number}"


FIGURE_FORMATS = {
    "requests_per_second": "{:,.0f} req/s",
    "p99_ms": "{:,.1f} ms",
    "peak_rss_mb": "{:,.0f} MB",
    "ready_seconds": "{:,.2f} s",
}


def figure(metric: str, value: float) -> str:
    return FIGURE_FORMATS[metric].format(value)


def better_over_worse(target: Target, subject: Result, reference: Result) -> float:
    mine, theirs = getattr(subject, target.metric), getattr(reference, target.metric)
    return mine / theirs if target.higher_is_better else theirs / mine


def round_ratios(target: Target, rounds_of: dict[str, list[Result]]) -> list[float]:
    """The target's ratio within each round, when both its servers took turns in the rounds."""
    subjects, references = rounds_of.get(target.subject), rounds_of.get(target.reference)
    if not (subjects and references):
        return []
    pairs = zip(subjects, references, strict=True)
    return [better_over_worse(target, subject, reference) for subject, reference in pairs]


def target_ratio(
    target: Target, results: dict[str, Result], rounds_of: dict[str, list[Result]]
) -> float:
    """The median of the ratios within each round when both servers took turns in the rounds
    (the machine's speed drifts between rounds more than the costs measured); else the ratio of
    the two medians."""
    ratios = round_ratios(target, rounds_of)
    if ratios:
        return median(ratios)
    return better_over_worse(target, results[target.subject], results[target.reference])


def report(
    results: dict[str, Result], rounds_of: dict[str, list[Result]], model: str,
    seconds: tuple[int, int], connections: int, rounds: int,
    load: tuple[tuple[float, ...], tuple[float, ...]],
) -> str:  # fmt: skip
    ours = results["ours"]
    lines = [
        "# Serving benchmark",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores ({cpu_model()}); "
        f"load average {load[0][0]:.2f} before, {load[1][0]:.2f} after; model {model}.",
        f"wrk, {connections} connections, one single-record POST body, after a 2 s warm-up; "
        "each server has one uvicorn worker and the same options; wrk shares the cores. "
        f"MLflow is measured alone, once, for {seconds[1]} s. The other servers run side by side, "
        f"all idle but the one under load, in loads of {seconds[0]} s for {rounds} rounds (every "
        "other round in reverse order): their "
        "figures are medians over rounds, the ratios between them medians of the ratios within "
        "each round.",
        "",
        "| server | req/s | p50 ms | p99 ms | non-2xx | CPU us/request | peak RSS MB | ready s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results.values():
        lines.append(
            f"| {r.name} | {r.requests_per_second:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.errors} | {r.cpu_us_per_request:,.0f} | {r.peak_rss_mb:.0f} | "
            f"{r.ready_seconds:.2f} |"
        )
    lines += [
        "",
        "| target | this service | reference | ratio | needed | met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    missed = []
    for target in TARGETS:
        reference = results[target.reference]
        subject = results[target.subject]
        mine, theirs = getattr(subject, target.metric), getattr(reference, target.metric)
        value = target_ratio(target, results, rounds_of)
        met = value >= target.needed
        if not met:
            missed.append((target, mine, theirs, value))
        lines.append(
            f"| {target.title} | {figure(target.metric, mine)} | "
            f"{figure(target.metric, theirs)} | {ratio_text(target, value)} | {target.wording} | "
            f"{'met' if met else '**missed**'} |"
        )
    spreads = [
        (target, sorted(ratios))
        for target in TARGETS
        if len(ratios := round_ratios(target, rounds_of)) >= 4
    ]
    if spreads:
        lines += ["", "How much the ratios moved from round to round:", ""]
        for target, ratios in spreads:
            quartiles = quantiles(ratios, n=4)
            lines.append(
                f"- {target.title}: middle half {ratio_text(target, quartiles[0])} to "
                f"{ratio_text(target, quartiles[2])}, all {ratio_text(target, ratios[0])} to "
                f"{ratio_text(target, ratios[-1])}."
            )
    mlflow = results["mlflow"]
    memory = mlflow.peak_rss_mb / ours.peak_rss_mb
    startup = mlflow.ready_seconds / ours.ready_seconds
    lines += [
        "",
        f"Also: peak RSS {ours.peak_rss_mb:,.0f} MB against MLflow's {mlflow.peak_rss_mb:,.0f} MB "
        f"(1/{memory:.1f}), ready after {ours.ready_seconds:.2f} s against "
        f"{mlflow.ready_seconds:.2f} s (1/{startup:.1f}).",
    ]
    if missed:
        lines += ["", "## Missed", ""]
        for target, mine, theirs, value in missed:
            lines.append(
                f"- {target.title}: {figure(target.metric, mine)} against "
                f"{figure(target.metric, theirs)}, {ratio_text(target, value)} where "
                f"{target.wording} is needed."
            )
            if target.key == "floor":
                floor = results["floor"]
                lines.append(
                    f"  The server is CPU-bound: {results[target.subject].cpu_us_per_request:,.0f} "
                    "us of CPU per "
                    f"request here against {floor.cpu_us_per_request:,.0f} us for the constant "
                    "endpoint, which neither validates the record, nor runs the model, nor "
                    "builds an answer from it. That work, not waiting, is the gap; on a shared "
                    "2-core machine the ratio also moves by several points from run to run."
                )
    errors = [r.name for r in results.values() if r.errors]
    if errors:
        lines += ["", f"Non-2xx answers from {', '.join(errors)}: their figures are not valid."]
    return "\n".join(lines) + "\n"


@app.command()
def main(
    seconds: Annotated[
        int, typer.Option(min=1, help="Duration of each load of the servers taking turns")
    ] = 2,
    mlflow_seconds: Annotated[int, typer.Option(min=1, help="Duration of MLflow's load")] = 5,
    connections: Annotated[int, typer.Option(help="Concurrent connections")] = 16,
    rounds: Annotated[
        int, typer.Option(min=1, help="Rounds of the servers compared with each other")
    ] = 16,
    bundle_dir: Annotated[Path, typer.Option(help="Bundle served by this service")] = BUNDLE_DIR,
    output: Annotated[Path, typer.Option(help="Markdown report")] = BENCH_FILE,
) -> None:
    """Benchmark this service, `mlflow models serve` and a constant endpoint."""
    if shutil.which("wrk") is None:
        raise typer.BadParameter("wrk is not installed: apt-get install wrk")
    try:
        metadata = read_verified(bundle_dir)
    except BundleError as error:
        raise typer.BadParameter(f"{error}: run `make pipeline`") from None
    if not TEST_FILE.is_file():
        raise typer.BadParameter(f"{TEST_FILE} is missing: run `make pipeline`")
    names = metadata.feature_names
    values = sample_record(metadata)
    name, version = metadata.identity.registered_model, metadata.identity.version
    print(f"bundle: {metadata.identity}; MLflow serves models:/{name}@{CHAMPION_ALIAS}")

    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_tracking_uri()}
    env.update(API_BUNDLE_DIR=str(bundle_dir))  # whatever `.env` says
{%- if cookiecutter.use_redis_cache %}
    env.update(API_CACHE_URL="")  # the service itself, not Redis
{%- endif %}
    # MLflow starts `uvicorn` by name: it must find the one of this environment.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    python = sys.executable
    record = json.dumps(dict(zip(names, values, strict=True)))
    split = {"columns": names, "data": [values]}  # MLflow's pandas-split input format
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as scratch:
        folder = Path(scratch)
        (folder / "floor_app.py").write_text(FLOOR_APP)
        uvicorn = [python, "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning"]

        def this_service(title: str, service_env: dict[str, str]) -> Server:
            port = free_port()
            return Server(
                name=title,
                command=[
                    *uvicorn,
                    "--port",
                    str(port),
                    "--factory",
                    "{{ cookiecutter.module_name }}.api.main:create_app",
                ],
                ready_url=f"http://127.0.0.1:{port}/ready",
                predict_url=f"http://127.0.0.1:{port}/predict",
                body=record,
                env=service_env,
            )

        mlflow_port, floor_port = free_port(), free_port()
        mlflow_server = Server(
            name="mlflow models serve (scikit-learn)",
            command=[
                python,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                f"models:/{name}@{CHAMPION_ALIAS}",
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
                "--workers",
                "1",
            ],
            ready_url=f"http://127.0.0.1:{mlflow_port}/ping",
            predict_url=f"http://127.0.0.1:{mlflow_port}/invocations",
            body=json.dumps({"dataframe_split": split}),
            env=env,
        )
        # Compared with each other in rounds, in this order: the two servers of each target are
        # neighbours, measured one just after the other.
        compared = {
            "floor": Server(
                name="constant FastAPI endpoint (floor)",
                command=[
                    *uvicorn,
                    "--port",
                    str(floor_port),
                    "--app-dir",
                    scratch,
                    "floor_app:app",
                ],
                ready_url=f"http://127.0.0.1:{floor_port}/health",
                predict_url=f"http://127.0.0.1:{floor_port}/predict",
                body=record,
                env=env,
            ),
{%- if cookiecutter.use_monitoring %}
            # Variants of this service that differ only by the settings turning monitoring off.
            "unmonitored": this_service(
                "this service, monitoring off",
                {**env, "API_METRICS_ENABLED": "false", "API_PREDICTION_LOG_ENABLED": "false"},
            ),
            "unlogged": this_service(
                "this service, prediction log off", {**env, "API_PREDICTION_LOG_ENABLED": "false"}
            ),
            # This service logs its predictions into the scratch folder.
            "ours": this_service(
                "this service (FastAPI + ONNX Runtime)",
                {**env, "API_PREDICTION_LOG_PATH": str(folder / "predictions.sqlite")},
            ),
{%- else %}
            "ours": this_service("this service (FastAPI + ONNX Runtime)", env),
{%- endif %}
        }
        load_before = os.getloadavg()
        mlflow_result = measure(mlflow_server, mlflow_seconds, connections, folder)
        rounds_of: dict[str, list[Result]] = {key: [] for key in compared}
        with contextlib.ExitStack() as started:
            running = {}
            for key, server in compared.items():  # all up at once, idle but the one under load
                running[key] = launch(server, connections, folder)
                started.callback(stop_group, running[key].process)
            for number in range(rounds):
                print(f"round {number + 1} of {rounds}")
                # Every other round in reverse, so that a slow drift of the machine's speed
                # favours neither server of a pair.
                order = list(compared) if number % 2 == 0 else list(compared)[::-1]
                for key in order:
                    rounds_of[key].append(load(running[key], seconds, connections, folder))
        load_after = os.getloadavg()
    results = {key: median_result(found) for key, found in rounds_of.items()}
    results["mlflow"] = mlflow_result
    text = report(
        results,
        rounds_of,
        f"{name} version {version}",
        (seconds, mlflow_seconds),
        connections,
        rounds,
        (load_before, load_after),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print()
    print(text)
    print(f"written to {output}")


if __name__ == "__main__":
    app()
