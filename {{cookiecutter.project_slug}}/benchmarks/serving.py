"""Benchmark of the prediction service against `mlflow models serve` on the same model.

Compares, on loopback ports, this service (ONNX Runtime, the bundle in models/bundle/),
`mlflow models serve --env-manager local` on `models:/<registered model>@champion` of the
project's MLflow store (the version that `promote` made the champion, which models/bundle holds),
and a FastAPI endpoint that returns a constant (the floor: what uvicorn and FastAPI cost with no
model at all), each with the same uvicorn options and one worker. Each gets the same load from wrk
(16 connections, one single-record POST body from the test split) after a short warm-up.
{%- if cookiecutter.task == "image" %}
The record is the test split's first picture: uploaded as a PNG file to this service and to the
constant endpoint, its pixel values as columns to MLflow (what the logged scikit-learn model reads).
{%- endif %}
MLflow, slow to start and far behind, is measured once, alone, for 5 s. The others run side by
side, idle but the one under load, and take turns in loads of 2 s for `--rounds` rounds, every
other round in reverse order, so that the two servers of each ratio are measured one just after
the other: a ratio is the median of the ratios within each round, on which a drift of the
machine's speed weighs little. Many short loads rather than a few long ones, for the same time:
measured on a shared 2-core machine (this service against a variant of it), the ratio of two
loads of 2 s one after the other spread no more from round to round than that of two loads of
5 s (middle half 21 points wide over 48 pairs, against 23 over 12), so 16 rounds of 2 s give a
median about 1.6 times as steady as 6 rounds of 5 s. The report gives how far those ratios
spread: on a shared machine, often as far as a cost of 10%.
{%- if cookiecutter.use_monitoring %}
Two variants of this service take their turns too, for the cost of monitoring: with its metrics
and prediction log off (API_METRICS_ENABLED, API_PREDICTION_LOG_ENABLED), and with the log alone
off; the metrics' cost is the second against the first, the log's this service against the
second.
{%- endif %}

Prints and writes to reports/bench.md: requests per second, p50/p99 latency, server CPU time per
request, peak memory (RSS of the server's whole process tree) and time from launch to ready, then
each target of the issue (TARGETS below) as met or missed, with the figures behind it. A
benchmark, not a test: it asserts nothing, it reports, including the targets it misses. This file
chooses the servers and the rounds; servers.py starts, loads and measures a server, report.py
judges the targets and writes the report.

    make pipeline && make bench       # about 3 minutes
    uv run python benchmarks/serving.py --help

Needs wrk (`apt-get install wrk`) and a finished pipeline (mlflow.db with a champion, the bundle).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from report import Target, report
from servers import Result, Server, free_port, launch, load, measure, median_result, stop_group

{% if cookiecutter.task == "image" -%}
from {{ cookiecutter.module_name }} import (
    images,
)
{% endif -%}
from {{ cookiecutter.module_name }}.bundle import (
    BundleError,
    BundleMetadata,
    NumericFeature,
    read_verified,
)
from {{ cookiecutter.module_name }}.config import (
    BUNDLE_DIR,
    CHAMPION_ALIAS,
{%- if cookiecutter.task == "image" %}
    PROJ_ROOT,
{%- endif %}
    REPORTS_DIR,
    TEST_FILE,
    mlflow_tracking_uri,
)
from {{ cookiecutter.module_name }}.inference import (
    sample_row,
)

app = typer.Typer(add_completion=False, help=__doc__)

BENCH_FILE = REPORTS_DIR / "bench.md"


# The targets, on the default model, one worker, 2 cores.
TARGETS = [
{%- if cookiecutter.task in ("text", "image") %}
    # The issue's target for texts and pictures: MLflow's scikit-learn server is faster on one
    # text than on a row of 30 numbers, and a text or a picture costs this service more.
    Target("throughput", "throughput vs MLflow", "mlflow", "requests_per_second", True, 20.0,
           "at least 20x"),
{%- else %}
    Target("throughput", "throughput vs MLflow", "mlflow", "requests_per_second", True, 50.0,
           "at least 50x"),
{%- endif %}
    Target("p99", "p99 latency vs MLflow", "mlflow", "p99_ms", False, 10.0, "at most 1/10"),
{%- if cookiecutter.use_monitoring %}
    # The serving path alone (M4's target); what monitoring adds has targets of its own below.
    Target("floor", "throughput vs constant endpoint, monitoring off", "floor",
           "requests_per_second", True, 0.50, "at least 50%", subject="unmonitored"),
{%- else %}
    Target("floor", "throughput vs constant endpoint", "floor", "requests_per_second", True, 0.50,
           "at least 50%"),
{%- endif %}
{%- if cookiecutter.use_monitoring %}
    # What monitoring costs: the metrics (prediction log off in both), then the prediction log
    # (metrics on in both).
    Target("metrics", "throughput, metrics on vs off", "unmonitored", "requests_per_second",
           True, 0.90, "at least 90%", subject="unlogged"),
    Target("logging", "throughput, prediction log on vs off", "unlogged", "requests_per_second",
           True, 0.90, "at least 90%"),
{%- endif %}
{%- if cookiecutter.use_explain_api %}
    # What /explain costs against /predict (a figure, no target): 1 + parts rows a model call.
    Target("explain", "throughput, /explain vs /predict", "ours", "requests_per_second", True,
           0.0, "a figure, no target", subject="explained"),
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


def sample_record(metadata: BundleMetadata) -> list[Any]:
    """The first row of the test split whose numbers are inside their training ranges (the
    service refuses values far outside them), in the model's feature order, typed as the service
    takes them; else a sample row (the middle of each range)."""
    with TEST_FILE.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                values = [
                    float(row[f.name]) if f.kind == "numeric" else row[f.name]
                    for f in metadata.features
                ]
            except ValueError:  # an empty number
                continue
            inside = all(
                f.min <= value <= f.max
                for f, value in zip(metadata.features, values, strict=True)
                if isinstance(f, NumericFeature)
            )
            if inside:
                return values
    return sample_row(metadata)


{%- if cookiecutter.task == "image" %}


def picture_requests(metadata: BundleMetadata) -> tuple[bytes, str, dict[str, Any]]:
    """The test split's first picture: as this service's upload (a multipart body and its content
    type), and as MLflow's pandas-split input, its pixel values in columns `<feature>_<i>`."""
    feature = metadata.image_feature
    assert feature is not None  # the image task's bundle has its one image feature
    with TEST_FILE.open(encoding="utf-8", newline="") as handle:
        path = PROJ_ROOT / next(csv.DictReader(handle))[feature.name]
    data = path.read_bytes()
    boundary = "bench-serving-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
        f'filename="{path.name}"\r\nContent-Type: image/png\r\n\r\n'
    )
    body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    pixels = images.pixels(images.decode(data), feature).tolist()
    columns = [f"{feature.name}_{index}" for index in range(feature.size)]
    split = {"columns": columns, "data": [pixels]}
    return body, f"multipart/form-data; boundary={boundary}", split
{%- endif %}


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
{%- if cookiecutter.task == "image" %}
    record, content_type, split = picture_requests(metadata)
{%- else %}
    names = metadata.feature_names
    values = sample_record(metadata)
    record = json.dumps(dict(zip(names, values, strict=True))).encode()
    content_type = "application/json"
    split = {"columns": names, "data": [values]}  # MLflow's pandas-split input format
{%- endif %}
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
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as scratch:
        folder = Path(scratch)
        (folder / "floor_app.py").write_text(FLOOR_APP)
        uvicorn = [python, "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning"]

        def this_service(title: str, service_env: dict[str, str], path: str = "/predict") -> Server:
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
                predict_url=f"http://127.0.0.1:{port}{path}",
                body=record,
                env=service_env,
                content_type=content_type,
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
            body=json.dumps({"dataframe_split": split}).encode(),
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
                content_type=content_type,
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
{%- if cookiecutter.use_explain_api %}
            # /explain of the same service, right after /predict (its own process, same settings).
            "explained": this_service("this service's /explain", env, "/explain"),
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
        TARGETS,
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
