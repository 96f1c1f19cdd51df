"""Benchmark of the pipeline: cold `dvc repro`, the no-op re-run, and where the time goes.

Runs in a scratch copy of the project (its source files, a fresh git + DVC repository and MLflow
store), so nothing of the real project is touched. Prints a table and writes it to
reports/bench_pipeline.md. A benchmark, not a test: it asserts nothing, it reports.

    make bench-pipeline          # or: uv run python benchmarks/pipeline.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from support import scratch_copy

from {{ cookiecutter.module_name }}.config import (
    PROJ_ROOT,
)

STAGE_LINE = re.compile(r"^Running stage '([^']+)'")
HEAVY = ("great_expectations", "mlflow", "codecarbon", "skl2onnx", "onnxruntime", "sklearn")


def timed_repro(folder: Path, env: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Run `dvc repro`, timing the whole run and each stage from the moment it starts."""
    start = time.perf_counter()
    marks: list[tuple[str, float]] = []
    with subprocess.Popen(
        ["dvc", "repro"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            match = STAGE_LINE.match(line)
            if match:
                marks.append((match.group(1), time.perf_counter()))
    total = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"dvc repro failed in {folder} (exit {process.returncode})")
    # A stage lasts until the next one starts; the last until dvc exits. No stage ran: no marks.
    ends = [moment for _, moment in marks[1:]] + [start + total]
    return total, {stage: end - begun for (stage, begun), end in zip(marks, ends, strict=False)}


def import_cost(module: str, env: dict[str, str]) -> tuple[float, list[str]]:
    """Seconds to import a stage module in a fresh interpreter, and the heavy libraries it loads."""
    code = (
        "import sys, time; t = time.perf_counter(); import "
        + module
        + "; print(time.perf_counter() - t); print(','.join(m for m in "
        + repr(HEAVY)
        + " if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    seconds, loaded = done.stdout.splitlines()
    return float(seconds), [name for name in loaded.split(",") if name]


def main() -> None:
    stages = yaml.safe_load((PROJ_ROOT / "dvc.yaml").read_text())["stages"]
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as folder:
        scratch = Path(folder)
        env = scratch_copy(scratch)
        cold, per_stage = timed_repro(scratch, env)
        noop, _ = timed_repro(scratch, env)
        env["PYTHONPATH"] = str(scratch)
        imports = {
            name: import_cost(stage["cmd"].split()[2], env) for name, stage in stages.items()
        }

    lines = [
        "# Pipeline benchmark",
        "",
        f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}.",
        "",
        "| measure | seconds |",
        "|---|---:|",
        f"| cold `dvc repro` (all stages) | {cold:.1f} |",
        f"| no-op re-run (nothing changed) | {noop:.1f} |",
        f"| no-op / cold | {noop / cold:.2f} |",
        "",
        "| stage | seconds | import of its module | heavy libraries loaded by that import |",
        "|---|---:|---:|---|",
    ]
    for name in stages:
        seconds, loaded = imports[name]
        shown = ", ".join(loaded) or "none"
        lines.append(f"| {name} | {per_stage.get(name, 0.0):.1f} | {seconds:.1f} | {shown} |")
    report = "\n".join(lines) + "\n"
    print(report)
    (PROJ_ROOT / "reports").mkdir(exist_ok=True)
    (PROJ_ROOT / "reports" / "bench_pipeline.md").write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
