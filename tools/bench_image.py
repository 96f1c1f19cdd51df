"""Benchmark the generated project's service image and write the figures into the M5 docs page.

    sudo .venv/bin/python tools/bench_image.py [--project DIR] [--write docs/m5-delivery.md]

Measures, on the engine of tools/docker_engine.py and its local Python base image: the image's
size (and the base's), what makes it up (the base, each layer of the Dockerfile, the largest
distributions in the virtualenv), a cold build (no layer cache, no download cache), a warm
rebuild with nothing changed, a rebuild after a new model and after a code change, and the time
from `docker run` to the first 200 of /ready, with the memory the service then uses.

Without --project it renders the default answers into build/bench-image/ and runs `make setup`
and `make pipeline` there first (~3 min). The builds use a copy of the image's build context, so
a project given with --project is never modified. The engine is started if needed and then
stopped again; images made here are removed. One file, longer than most modules here, so that it
runs as root with the template's venv alone and writes its figures in one step.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
DOCS_PAGE = TEMPLATE_DIR / "docs" / "m5-delivery.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
RUNS_TO_READY = 5
# The Dockerfile's layers that hold bytes, found by a piece of the instruction that made them.
LAYERS = {
    "virtualenv (`serve` group)": "COPY /opt/venv",
    "bytecode of what the service imports": "PYTHONDONTWRITEBYTECODE=''",
    "the package": "COPY {module}/",
    "the model bundle": "COPY models/bundle/",
}
# Sizes of the virtualenv's distributions, from the files each one still has in the image.
DISTRIBUTION_SIZES = """
import importlib.metadata as metadata, json
sizes = {}
for dist in metadata.distributions():
    files = [f.locate() for f in dist.files or []]
    sizes[dist.metadata["Name"]] = sum(p.stat().st_size for p in files if p.is_file())
print(json.dumps(sizes))
"""
SHOWN_DISTRIBUTIONS = 6
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def load_engine_tool():
    spec = importlib.util.spec_from_file_location(
        "docker_engine", TEMPLATE_DIR / "tools" / "docker_engine.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["docker_engine"] = module  # dataclasses look their module up while loading
    spec.loader.exec_module(module)
    return module


engine = load_engine_tool()


def sh(
    command: list[str], cwd: Path | None = None, env: dict | None = None, timeout: float = 1800
) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def prepared_project(output: Path) -> Path:
    """The default project, rendered, installed and with its pipeline run."""
    project = output / "breast-cancer-diagnosis"
    if not (project / "models" / "bundle" / "model.onnx").exists():
        shutil.rmtree(output, ignore_errors=True)
        print(
            "==> rendering the default project, make setup, make pipeline (about 3 min)", flush=True
        )
        cookiecutter = Path(sys.executable).parent / "cookiecutter"
        sh([str(cookiecutter), "--no-input", "--output-dir", str(output), str(TEMPLATE_DIR)])
        uv = f"UV={Path(sys.executable).parent / 'uv'}"
        sh(["make", uv, "setup"], cwd=project)
        sh(["make", uv, "pipeline"], cwd=project)
    return project


def package_name(project: Path) -> str:
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    return pyproject["tool"]["uv"]["build-backend"]["module-name"]


def build_context(project: Path, scratch: Path) -> Path:
    """A copy of what the Dockerfile may see (its .dockerignore lets in nothing else)."""
    module = package_name(project)
    context = scratch / "context"
    context.mkdir()
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "uv.lock"):
        shutil.copy2(project / name, context / name)
    shutil.copytree(
        project / module, context / module, ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(project / "models" / "bundle", context / "models" / "bundle")
    return context


class Bench:
    def __init__(self, state, base_image: str, context: Path):
        self.state, self.base_image, self.context = state, base_image, context
        self.env = {**os.environ, **engine.docker_env(state)}
        self.tag = f"bench-image:{os.getpid()}"

    def docker(self, *args: str, timeout: float = 1800) -> str:
        return sh([str(engine.DOCKER_CLI), *args], env=self.env, timeout=timeout)

    def build(self, *flags: str) -> float:
        started = time.monotonic()
        self.docker("build", *flags, "--build-arg", f"BASE_IMAGE={self.base_image}",
                    "--tag", self.tag, str(self.context))  # fmt: skip
        return time.monotonic() - started

    def size_mb(self, image: str) -> float:
        return int(self.docker("image", "inspect", "--format", "{{.Size}}", image)) / 1e6

    def composition(self, module: str) -> dict:
        """MB of each layer of LAYERS, and of each distribution in the virtualenv."""
        history = self.docker("history", "--no-trunc", "--human=false",
                              "--format", "{{.Size}}|{{.CreatedBy}}", self.tag)  # fmt: skip
        made = [line.split("|", 1) for line in history.splitlines()]
        layers = {
            part: int(size) / 1e6
            for part, piece in LAYERS.items()
            for size, created_by in made
            if piece.format(module=module) in created_by
        }
        sizes = self.docker("run", "--rm", "--entrypoint", "python", self.tag, "-c",
                            DISTRIBUTION_SIZES)  # fmt: skip
        distributions = {name: size / 1e6 for name, size in json.loads(sizes).items()}
        return {"layers": layers, "distributions": distributions}

    def run_to_ready(self) -> tuple[float, float]:
        """Seconds from `docker run` to the first 200 of /ready, and MiB used then."""
        started = time.monotonic()
        container = self.docker(
            "run", "--detach", "--rm", "--publish", "127.0.0.1::8000", self.tag
        ).strip()
        try:
            address = self.docker("port", container, "8000/tcp").split()[0]
            deadline = started + 60
            while time.monotonic() < deadline:
                try:
                    with LOOPBACK.open(f"http://{address}/ready", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    time.sleep(0.02)
            else:
                sys.exit("the container was not ready after 60 s")
            elapsed = time.monotonic() - started
            usage = self.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", container)
            return elapsed, parse_mib(usage.split("/")[0])
        finally:
            self.docker("stop", "--time", "5", container)


def parse_mib(text: str) -> float:
    text = text.strip()
    for unit, factor in (("GiB", 1024), ("MiB", 1), ("KiB", 1 / 1024), ("B", 1 / 1024**2)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float("nan")


def measure(project: Path, state, base_image: str) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        context = build_context(project, Path(scratch))
        bench = Bench(state, base_image, context)
        try:
            print("==> cold build: no layer cache, no download cache", flush=True)
            bench.docker("builder", "prune", "--force", "--filter", "type=exec.cachemount")
            cold = bench.build("--no-cache")
            warm = bench.build()
            metadata = context / "models" / "bundle" / "metadata.json"
            document = json.loads(metadata.read_text())
            document["created_at"] = datetime.datetime.now(datetime.UTC).isoformat()
            metadata.write_text(json.dumps(document, indent=2) + "\n")
            new_model = bench.build()
            with (context / package_name(project) / "api" / "__init__.py").open("a") as handle:
                handle.write("# a code change\n")
            new_code = bench.build()
            composition = bench.composition(package_name(project))
            print(f"==> docker run to ready, {RUNS_TO_READY} times", flush=True)
            starts = [bench.run_to_ready() for _ in range(RUNS_TO_READY)]
            return {
                "date": datetime.date.today().isoformat(),
                "machine": f"{os.cpu_count()} cores, {platform.machine()}",
                "docker": bench.docker("version", "--format", "{{.Server.Version}}").strip(),
                "base_image": base_image,
                "base_mb": bench.size_mb(base_image),
                "image_mb": bench.size_mb(bench.tag),
                "cold_s": cold,
                "warm_s": warm,
                "new_model_s": new_model,
                "new_code_s": new_code,
                "ready_s": statistics.median(s for s, _ in starts),
                "ready_max_s": max(s for s, _ in starts),
                "memory_mib": statistics.median(m for _, m in starts),
                **composition,
            }
        finally:
            subprocess.run([str(engine.DOCKER_CLI), "image", "rm", "--force", bench.tag],
                           env=bench.env, capture_output=True, check=False)  # fmt: skip


def table(figures: dict) -> str:
    app_mb = figures["image_mb"] - figures["base_mb"]
    ready = f"{figures['ready_s']:.1f} s (median of {RUNS_TO_READY})"
    ready += f"; slowest {figures['ready_max_s']:.1f} s"
    rows = [
        ("image size", f"{figures['image_mb']:.0f} MB: {figures['base_mb']:.0f} MB base + "
                       f"{app_mb:.0f} MB of service, dependencies and model"),
        ("cold build (no cache at all)", f"{figures['cold_s']:.0f} s"),
        ("rebuild, nothing changed", f"{figures['warm_s']:.1f} s"),
        ("rebuild after a new model", f"{figures['new_model_s']:.1f} s"),
        ("rebuild after a code change", f"{figures['new_code_s']:.1f} s"),
        ("`docker run` to the first 200 of /ready", ready),
        ("memory once ready", f"{figures['memory_mib']:.0f} MiB"),
    ]  # fmt: skip
    lines = [
        START,
        f"Measured {figures['date']} by `tools/bench_image.py` on {figures['machine']}, Docker "
        f"{figures['docker']}, base `{figures['base_image']}`, default project:",
        "",
        "| what | figure |",
        "|---|---|",
        *(f"| {what} | {value} |" for what, value in rows),
        "",
        "What makes up the image:",
        "",
        "| part | MB |",
        "|---|---|",
        *(f"| {part} | {value} |" for part, value in composition_rows(figures)),
        END,
    ]
    return "\n".join(lines)


def composition_rows(figures: dict) -> list[tuple[str, str]]:
    """The base, each layer with bytes (the virtualenv's largest distributions named), the rest."""
    rows = [("base image", f"{figures['base_mb']:.0f}")]
    largest = sorted(figures["distributions"].items(), key=lambda item: -item[1])
    shown = largest[:SHOWN_DISTRIBUTIONS]
    others = sum(size for _, size in largest[SHOWN_DISTRIBUTIONS:])
    for part, size in figures["layers"].items():
        value = f"{size:.1f}" if size < 10 else f"{size:.0f}"
        if part.startswith("virtualenv"):
            named = ", ".join(f"{name} {mb:.0f}" for name, mb in shown)
            value += f": {named}, {len(largest) - len(shown)} others {others:.0f}"
        rows.append((part, value))
    rest = figures["image_mb"] - figures["base_mb"] - sum(figures["layers"].values())
    rows.append(("everything else (user, folders)", f"{rest:.1f}"))
    return rows


def write_into(page: Path, block: str) -> None:
    text = page.read_text(encoding="utf-8")
    if START not in text or END not in text:
        sys.exit(f"{page} has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    page.write_text(head + block + rest.split(END, 1)[1], encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, help="a generated project after `make pipeline`")
    parser.add_argument("--output", type=Path, default=TEMPLATE_DIR / "build" / "bench-image")
    parser.add_argument(
        "--write", type=Path, help=f"page to update, e.g. {DOCS_PAGE.relative_to(TEMPLATE_DIR)}"
    )
    args = parser.parse_args(argv)
    project = (args.project or prepared_project(args.output)).resolve()
    state = engine.State()
    try:
        engine.install(state)
        started = engine.start(state)
    except engine.EngineError as error:
        sys.exit(f"no Docker engine: {error}")
    try:
        base_image = engine.base_image(state, "3.11")
        figures = measure(project, state, base_image)
    finally:
        if started:
            engine.stop(state)
    block = table(figures)
    print(block)
    if args.write:
        write_into(args.write, block)
        print(f"written into {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
