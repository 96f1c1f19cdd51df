"""Fast tier, M5 delivery files: every render that changes one of them passes its checker.

Dockerfile (hadolint), GitHub workflows (actionlint, with shellcheck on their scripts),
compose.yaml (the Compose Specification's schema and Compose's own model, computed in Python by
tests/compose_model.py), each kustomize overlay (`kubectl kustomize`, then
`kubernetes-validate --strict`), the pre-commit configuration and secrets baseline, the branch
ruleset, and the Makefile targets these files call. The option sets are the shared matrix plus
those below, so that every combination of the options that change one of these files renders
at least once; a file's checker runs once per distinct content, however many sets render it.
Every checker is a wheel of the template's dev group: the fast tier needs no Docker. One slow
test compares the Python model of each compose.yaml with `docker compose config`'s. Nothing here
builds or runs a container: tests/test_delivery_docker.py does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from docker_fixtures import engine_tool

import compose_model as compose
from conftest import ALL_SETS, OPTION_SETS, path_without_dvc, render, run

BIN = Path(sys.executable).parent
DEFAULT = OPTION_SETS["default"]
# Sets that, with the shared matrix, render every combination of the options that change a
# delivery file: compose.yaml (cache x backend x monitoring), the workflows (docker x
# kubernetes x cache), the manifests (cache).
EXTRA_SETS = {
    "pg-k8s": {**DEFAULT, "mlflow_backend": "postgresql", "use_kubernetes": True,
               "python_version": "3.12"},
    "plain": {**DEFAULT, "use_monitoring": False},
    "cache-k8s": {**DEFAULT, "use_redis_cache": True, "use_kubernetes": True,
                  "use_monitoring": False, "python_version": "3.13"},
    "pg": {**DEFAULT, "mlflow_backend": "postgresql", "use_monitoring": False},
    "cache-pg": {**DEFAULT, "use_redis_cache": True, "mlflow_backend": "postgresql"},
    "no-docker": {**DEFAULT, "use_docker": False},
    "no-docker-cache": {**DEFAULT, "use_docker": False, "use_redis_cache": True},
    "no-api": {**DEFAULT, "use_api": False, "use_docker": False, "use_monitoring": False},
}  # fmt: skip
SETS = {**ALL_SETS, **EXTRA_SETS}
SET_IDS = list(SETS)
OVERLAYS = ("dev", "prod")
# Which package of the project's dev group provides each pre-commit hook's program.
HOOK_PACKAGES = {
    "ruff": "ruff",
    "nbstripout": "nbstripout",
    "detect-secrets-hook": "detect-secrets",
    "check-yaml": "pre-commit-hooks",
    "check-toml": "pre-commit-hooks",
    "check-added-large-files": "pre-commit-hooks",
}
ACTION_PIN = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
MAKE_CALL = re.compile(r"\bmake (?:--no-print-directory )?([a-z][a-z0-9-]*)")


@pytest.fixture(scope="session")
def project(rendered, tmp_path_factory):
    """`project(set_id)`: the render of an option set (the shared matrix's, or one of ours)."""
    cache: dict[str, Path] = {}

    def get(set_id: str) -> Path:
        if set_id in ALL_SETS:
            return rendered(set_id)
        if set_id not in cache:
            saved = os.environ.get("PATH", "")
            os.environ["PATH"] = path_without_dvc()
            try:
                cache[set_id] = render(tmp_path_factory.mktemp(set_id), SETS[set_id])
            finally:
                os.environ["PATH"] = saved
        return cache[set_id]

    return get


@pytest.fixture(scope="session")
def once():
    """`once(tool, *files)`: True the first time these contents meet this tool, then False, so
    a checker runs once per distinct rendering of its files."""
    seen: set[str] = set()

    def first(tool: str, *paths: Path) -> bool:
        digest = hashlib.sha256(tool.encode())
        for path in paths:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        key = digest.hexdigest()
        if key in seen:
            return False
        seen.add(key)
        return True

    return first


def answers(set_id: str) -> dict:
    return SETS[set_id]


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is missing from the template's dev group (`uv sync`)", pytrace=False)
    return str(path)


def sets_with(**conditions) -> list[str]:
    return [s for s in SET_IDS if all(SETS[s][k] == v for k, v in conditions.items())]


def stages(dockerfile: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined, comments dropped), per stage."""
    text = re.sub(r"\\\n", " ", dockerfile)
    lines = [line.strip() for line in text.splitlines()]
    result: list[list[str]] = [[]]
    for line in lines:
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            result.append([])
        result[-1].append(line)
    return result


def makefile_targets(project: Path) -> set[str]:
    text = (project / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, flags=re.MULTILINE))


# --- Dockerfile --------------------------------------------------------------------------------


@pytest.mark.parametrize("set_id", sets_with(use_docker=True))
def test_dockerfile_passes_hadolint(project, once, set_id):
    dockerfile = project(set_id) / "Dockerfile"
    if once("hadolint", dockerfile):
        run(
            [tool("hadolint"), "--failure-threshold", "style", str(dockerfile)],
            cwd=dockerfile.parent,
        )


@pytest.mark.parametrize("set_id", sets_with(use_docker=True))
def test_dockerfile_builds_the_service_as_the_issue_asks(project, set_id):
    text = (project(set_id) / "Dockerfile").read_text()
    module = project(set_id).name.replace("-", "_")
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE), "BuildKit would pull it"
    preamble, build, runtime = stages(text)
    version = answers(set_id)["python_version"]
    assert preamble == [f"ARG BASE_IMAGE=python:{version}-slim"]
    assert (
        build[0] == "FROM ${BASE_IMAGE} AS build" and runtime[0] == "FROM ${BASE_IMAGE} AS runtime"
    )
    sync = next(line for line in build if " sync " in line)
    for flag in ("--locked", "--no-default-groups", "--group serve", "--no-install-project"):
        assert flag in sync
    assert not any("uv" in line and "COPY" in line for line in runtime), "uv in the final stage"
    assert not any(re.search(r"pip install|apt-get", line) for line in runtime)
    assert "ARG BUNDLE_DIR=models/bundle" in runtime
    assert "COPY ${BUNDLE_DIR}/ models/bundle/" in runtime
    assert "USER 10001:10001" in runtime
    [healthcheck] = [line for line in runtime if line.startswith("HEALTHCHECK")]
    assert "/health" in healthcheck
    [command] = [line for line in runtime if line.startswith("CMD")]
    assert f"{module}.api.main:create_app" in command
    assert '--workers \\"$WORKERS\\"' in command and '--port \\"$PORT\\"' in command
    environment = " ".join(runtime)
    assert "ENV" in environment and "PORT=8000" in environment and "WORKERS=1" in environment
    # Several workers share their metrics through a folder emptied at each start (M6).
    multiprocess = "PROMETHEUS_MULTIPROC_DIR" in command and "rm -rf" in command
    assert multiprocess == answers(set_id)["use_monitoring"]


@pytest.mark.parametrize("set_id", sets_with(use_docker=True))
def test_dockerignore_lets_in_only_what_the_image_copies(project, set_id):
    lines = [
        line
        for line in (project(set_id) / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    module = project(set_id).name.replace("-", "_")
    assert lines[0] == "*", "ignore everything first, then allow"
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "uv.lock",
        f"{module}/",
        "models/bundle/",
        "models/fetched/",
    }


# --- compose ----------------------------------------------------------------------------------


def compose_scratch(project: Path, dotenv: bool) -> Path:
    """A folder holding the project's compose.yaml, without or with a .env copied from
    .env.example (the render stays as generated)."""
    folder = project.parent / f"compose-{'dotenv' if dotenv else 'bare'}-{project.name}"
    folder.mkdir(exist_ok=True)
    shutil.copy(project / "compose.yaml", folder / "compose.yaml")
    if dotenv:
        shutil.copy(project / ".env.example", folder / ".env")
    return folder


def compose_model(project: Path, dotenv: bool, profiles: str = "", **variables: str) -> dict:
    """compose.yaml as `docker compose config` shows it (tests/compose_model.py), interpolated
    from `variables` and the .env (with `dotenv`), with the compose profiles named (none by
    default, as a bare `docker compose up`)."""
    try:
        return compose.load(compose_scratch(project, dotenv), variables, profiles)
    except compose.ComposeError as error:
        pytest.fail(f"{project.name}: {error}", pytrace=False)


@pytest.mark.parametrize("set_id", sets_with(use_docker=True))
def test_compose_file_is_valid_and_complete(project, set_id):
    options = answers(set_id)
    assert "path: .env" in (project(set_id) / "compose.yaml").read_text()
    for dotenv in (False, True):
        services = compose_model(project(set_id), dotenv)["services"]
        expected = {"api"}
        if options["use_redis_cache"]:
            expected.add("redis")
        if options["mlflow_backend"] == "postgresql":
            expected |= {"postgres", "mlflow"}
        assert set(services) == expected
        for name, service in services.items():
            assert service.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
            assert service.get("restart") == "unless-stopped", f"{name}: no restart policy"
            for dependency in service.get("depends_on", {}).values():
                assert dependency["condition"] == "service_healthy", name
            for port in service.get("ports", []):
                assert port["host_ip"] == "127.0.0.1", f"{name} publishes beyond loopback"
            for volume in service.get("volumes", []):
                assert volume["type"] == "volume", f"{name}: {volume} is not a named volume"
        api = services["api"]
        assert api["build"]["args"]["BASE_IMAGE"] == f"python:{options['python_version']}-slim"
        if dotenv and options["mlflow_backend"] == "postgresql":  # a value from .env arrives
            assert api["environment"]["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
        if options["use_redis_cache"]:
            assert api["environment"]["API_CACHE_URL"] == "redis://redis:6379/0"
            assert api["depends_on"]["redis"]["condition"] == "service_healthy"
        if options["mlflow_backend"] == "postgresql":
            assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
            assert services["mlflow"]["image"].endswith("-full"), "psycopg2 is in -full images"


@pytest.mark.parametrize("set_id", sets_with(use_docker=True, use_monitoring=True))
def test_compose_monitoring_profile_wires_prometheus_and_grafana(project, set_id):
    """The `monitoring` profile adds Prometheus and Grafana: overridable official images,
    loopback ports, healthchecks, read-only mounts of files the render has, and addresses that
    match the other side (the scrape target is the API's service and port, Grafana's data source
    Prometheus's)."""
    folder = project(set_id)
    images = {"PROMETHEUS_IMAGE": "local/prometheus:test", "GRAFANA_IMAGE": "local/grafana:test"}
    for variables in ({}, images):
        model = compose_model(folder, dotenv=False, profiles="monitoring", **variables)
        services, scratch = model["services"], Path(model["services"]["api"]["build"]["context"])
        assert {"api", "prometheus", "grafana"} <= set(services)
        prometheus, grafana = services["prometheus"], services["grafana"]
        if "PROMETHEUS_IMAGE" in variables:
            assert (prometheus["image"], grafana["image"]) == tuple(images.values())
        else:
            assert re.fullmatch(r"prom/prometheus:v3\.\d+\.\d+", prometheus["image"])
            assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", grafana["image"])
        for name in ("prometheus", "grafana"):
            service = services[name]
            assert service["profiles"] == ["monitoring"]
            assert service["healthcheck"]["test"][0] == "CMD"
            assert service["restart"] == "unless-stopped"
            assert [port["host_ip"] for port in service["ports"]] == ["127.0.0.1"]
            for volume in service["volumes"]:
                if volume["type"] == "bind":
                    assert volume.get("read_only"), f"{name}: {volume['target']} is writable"
                    source = Path(volume["source"]).relative_to(scratch)
                    assert source.parts[0] == "deploy" and (folder / source).exists(), source
                else:
                    assert volume["type"] == "volume"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    mounts = {v["target"]: Path(v["source"]).relative_to(scratch) for v in prometheus["volumes"]
              if v["type"] == "bind"}  # fmt: skip
    config_file = next(a.split("=", 1)[1] for a in prometheus["command"] if "config.file" in a)
    config_folder = mounts[str(Path(config_file).parent)]
    scrape = yaml.safe_load((folder / config_folder / Path(config_file).name).read_text())
    [job] = [job for job in scrape["scrape_configs"] if job["job_name"] == "api"]
    api_port = services["api"]["ports"][0]["target"]
    assert job["static_configs"] == [{"targets": [f"api:{api_port}"]}]
    sources = yaml.safe_load(
        (folder / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    prometheus_port = prometheus["ports"][0]["target"]
    assert sources["datasources"][0]["url"] == f"http://prometheus:{prometheus_port}"
    grafana_targets = {volume["target"] for volume in grafana["volumes"]}
    providers = yaml.safe_load(
        (folder / "deploy/grafana/provisioning/dashboards/dashboards.yml").read_text()
    )
    assert providers["providers"][0]["options"]["path"] in grafana_targets
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (folder / "deploy/grafana/dashboards" / Path(home).name).is_file()


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        (("healthcheck:", "healthchek:"), "properties are not allowed ('healthchek' was"),
        (("restart: unless-stopped", "restart: [always]"), "api.restart: ['always'] is not"),
        (("- prediction-log:/var", "- prediction-logs:/var"), "'prediction-logs' is not declared"),
        (("${API_PORT:-8000}", "${API_PORT:?set API_PORT}"), "required variable API_PORT is miss"),
    ],
    ids=["unknown-key", "wrong-type", "undeclared-volume", "required-variable"],
)
def test_compose_model_refuses_what_compose_refuses(project, tmp_path, mistake, message):
    """The Python model is strict: each of these mistakes stops it with where and why."""
    text = (project("default") / "compose.yaml").read_text()
    assert mistake[0] in text
    (tmp_path / "compose.yaml").write_text(text.replace(mistake[0], mistake[1], 1))
    with pytest.raises(compose.ComposeError, match=re.escape(message)):
        compose.load(tmp_path, {})


# What `docker compose config` and the Python model must agree on, service by service.
COMPARED_FIELDS = ("image", "build", "environment", "depends_on", "restart", "profiles", "command")


def comparable(model: dict) -> dict:
    """A compose model reduced to what the templates set and the fast tier reads."""
    services = {}
    for name, service in model["services"].items():
        entry = {field: service.get(field) for field in COMPARED_FIELDS}
        entry["ports"] = service.get("ports") or []
        entry["volumes"] = [
            {key: v.get(key) for key in ("type", "source", "target", "read_only")}
            for v in service.get("volumes") or []
        ]
        check = service.get("healthcheck") or {}
        entry["healthcheck"] = (check.get("test"), check.get("retries"))
        services[name] = entry
    return {"name": model["name"], "services": services, "volumes": sorted(model["volumes"])}


@pytest.fixture(scope="session")
def compose_env() -> dict[str, str]:
    """An environment whose `docker compose` is compose v2 (installed by tools/docker_engine.py;
    `config` needs no running engine)."""
    state = engine_tool.State()
    try:
        engine_tool.install(state)
    except engine_tool.EngineError as error:
        pytest.fail(f"no docker compose to compare compose.yaml with: {error}", pytrace=False)
    return {**os.environ, **engine_tool.docker_env(state)}


@pytest.mark.slow
@pytest.mark.parametrize("set_id", sets_with(use_docker=True))
def test_docker_compose_config_agrees_with_the_python_model(project, once, compose_env, set_id):
    """Docker's own reading of each compose.yaml (with and without .env, with and without the
    monitoring profile) is the model the fast tier checks: tests/compose_model.py is faithful."""
    rendered_project = project(set_id)
    if not once("docker compose config", rendered_project / "compose.yaml"):
        return
    unset = {"COMPOSE_PROFILES", "COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_ENV_FILES"}
    base_env = {key: value for key, value in compose_env.items() if key not in unset}
    variables = {"API_PORT": "8123", "GRAFANA_IMAGE": "local/grafana:test"}
    for dotenv in (False, True):
        folder = compose_scratch(rendered_project, dotenv)
        for profiles in ("", "monitoring"):
            env = {**base_env, **variables, "COMPOSE_PROFILES": profiles}
            command = [str(engine_tool.DOCKER_CLI), "compose", "config", "--format", "json"]
            # Docker writes a literal `$` of the file back as `$$`, so its output stays valid.
            output = run(command, cwd=folder, env=env).stdout.replace("$$", "$")
            docker = json.loads(output)
            docker["volumes"] = list(docker.get("volumes") or {})
            ours = compose_model(rendered_project, dotenv, profiles, **variables)
            assert comparable(ours) == comparable(docker), (dotenv, profiles)


@pytest.mark.parametrize("set_id", sets_with(use_docker=True))
def test_make_up_and_down_take_the_monitoring_profile_along(project, set_id, tmp_path):
    """`make up` and `make down` export COMPOSE_PROFILES=monitoring exactly when the project has
    monitoring (seen by a stand-in `docker` on PATH); `COMPOSE_PROFILES=` leaves it out."""
    folder, monitored = project(set_id), answers(set_id)["use_monitoring"]
    stand_in = tmp_path / "docker"
    stand_in.write_text('#!/bin/sh\necho "profiles=[${COMPOSE_PROFILES-unset}] $*"\n')
    stand_in.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if key != "COMPOSE_PROFILES"}
    env["PATH"] = f"{tmp_path}{os.pathsep}{env['PATH']}"
    for target in ("up", "down"):
        done = run(["make", "--no-print-directory", target, "SERVICES=api"], folder, env)
        expected = "profiles=[monitoring] compose" if monitored else "profiles=[unset] compose"
        assert expected in done.stdout, done.stdout
    if monitored:
        done = run(["make", "--no-print-directory", "up", "SERVICES=api", "COMPOSE_PROFILES="],
                   folder, env)  # fmt: skip
        assert "profiles=[] compose up" in done.stdout, done.stdout
    if not monitored:
        text = (folder / "compose.yaml").read_text()
        assert not re.search("monitoring|prometheus|grafana", text, re.IGNORECASE)


# --- Kubernetes -------------------------------------------------------------------------------


def rendered_overlay(project: Path, overlay: str) -> list[dict]:
    kubectl = [tool("kubectl"), "kustomize", f"deploy/k8s/overlays/{overlay}"]
    manifest = run(kubectl, cwd=project).stdout
    target = project.parent / f"k8s-{project.name}-{overlay}.yaml"
    target.write_text(manifest)
    run([tool("kubernetes-validate"), "--strict", "--quiet", str(target)], cwd=project)
    return [document for document in yaml.safe_load_all(manifest) if document]


@pytest.mark.parametrize("set_id", sets_with(use_kubernetes=True))
def test_each_overlay_renders_and_validates_strictly(project, once, set_id):
    folder = project(set_id) / "deploy" / "k8s"
    if not once("kustomize", *sorted(p for p in folder.rglob("*.yaml"))):
        return
    cache = answers(set_id)["use_redis_cache"]
    slug = project(set_id).name
    for overlay in OVERLAYS:
        documents = rendered_overlay(project(set_id), overlay)
        kinds = {(d["kind"], d["metadata"]["name"].split("-settings")[0]) for d in documents}
        namespace = slug if overlay == "prod" else f"{slug}-dev"
        expected = {("Namespace", namespace), ("ConfigMap", "api"), ("Deployment", "api")}
        expected |= {("Service", "api"), ("HorizontalPodAutoscaler", "api")}
        if cache:
            expected |= {("Deployment", "redis"), ("Service", "redis")}
        if overlay == "prod":
            expected.add(("PodDisruptionBudget", "api"))
        assert kinds == expected
        [deployment] = [
            d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "api"
        ]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["startupProbe"]["httpGet"]["path"] == "/health"
        assert {"requests", "limits"} <= set(container["resources"])
        assert container["envFrom"][0]["configMapRef"]["name"].startswith("api-settings-")
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
        config = next(d for d in documents if d["kind"] == "ConfigMap")
        assert ("API_CACHE_URL" in config["data"]) == cache


@pytest.mark.parametrize("set_id", sets_with(use_kubernetes=True))
def test_dask_for_make_tune_renders_validates_and_runs_the_projects_trials(project, once, set_id):
    """deploy/k8s/dask: a scheduler and workers in their own namespace, on an image of the
    project's package with the pipeline and tune groups, whose Dockerfile passes hadolint."""
    folder = project(set_id) / "deploy" / "k8s" / "dask"
    if not once("dask", *sorted(folder.iterdir())):
        return
    slug = project(set_id).name
    manifest = run([tool("kubectl"), "kustomize", "deploy/k8s/dask"], cwd=project(set_id)).stdout
    target = project(set_id).parent / f"k8s-{slug}-dask.yaml"
    target.write_text(manifest)
    run([tool("kubernetes-validate"), "--strict", "--quiet", str(target)], cwd=project(set_id))
    documents = [d for d in yaml.safe_load_all(manifest) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert kinds == {
        ("Namespace", f"{slug}-tune"),
        ("Deployment", "dask-scheduler"),
        ("Service", "dask-scheduler"),
        ("Deployment", "dask-worker"),
    }
    assert {d["metadata"].get("namespace", f"{slug}-tune") for d in documents} == {f"{slug}-tune"}
    [service] = [d for d in documents if d["kind"] == "Service"]
    assert service["spec"]["ports"][0]["port"] == 8786
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    commands = {}
    for name, deployment in deployments.items():
        spec = deployment["spec"]["template"]["spec"]
        [container] = spec["containers"]
        assert container["image"] == f"ghcr.io/your-org/{slug}-tune:0.1.0"
        assert spec["securityContext"]["runAsNonRoot"] and {"requests", "limits"} <= set(
            container["resources"]
        )
        commands[name] = container["command"]
    assert commands["dask-scheduler"][:4] == ["dask", "scheduler", "--port", "8786"]
    assert commands["dask-worker"][:5] == [
        "dask",
        "worker",
        "tcp://dask-scheduler:8786",
        "--nthreads",
        "1",
    ]
    dockerfile = folder / "Dockerfile"
    run([tool("hadolint"), "--failure-threshold", "style", str(dockerfile)], cwd=project(set_id))
    text = dockerfile.read_text()
    assert "--group pipeline --group tune" in text and "--locked" in text
    package = next(p.parent.name for p in project(set_id).glob("*/params.py"))
    assert f"COPY {package}/ {package}/" in text and "USER 10001:10001" in text


def test_strict_validation_rejects_an_unknown_field(project, tmp_path):
    """The validator is strict: a misspelt field fails (without --strict, it would pass)."""
    deployment = project("cache-k8s") / "deploy" / "k8s" / "base" / "deployment.yaml"
    broken = tmp_path / "deployment.yaml"
    broken.write_text(deployment.read_text().replace("readinessProbe:", "readynessProbe:"))
    done = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--quiet", str(broken)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode != 0 and "readynessProbe" in done.stdout + done.stderr


# --- GitHub Actions ---------------------------------------------------------------------------


def workflow_paths(project: Path) -> list[Path]:
    return sorted((project / ".github" / "workflows").glob("*.yml"))


@pytest.mark.parametrize("set_id", sets_with(use_github_actions=True))
def test_workflows_pass_actionlint_and_shellcheck(project, once, set_id):
    workflows = workflow_paths(project(set_id))
    options = answers(set_id)
    expected = {"ci.yml"}
    expected |= {"release.yml"} if options["use_docker"] else set()
    expected |= {"drift.yml"} if options["use_monitoring"] else set()
    assert {path.name for path in workflows} == expected
    if once("actionlint", *workflows):
        # shellcheck (from the template's dev group) on PATH: actionlint runs it on each script.
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        command = [tool("actionlint"), "-shellcheck", tool("shellcheck"), *map(str, workflows)]
        run(command, cwd=project(set_id), env=env)


@pytest.mark.parametrize("set_id", sets_with(use_github_actions=True))
def test_workflows_follow_the_delivery_rules(project, set_id):
    """GitHub expressions survive rendering; actions pinned to commits; least privilege;
    one run per branch; every `make` call is a target of the project's Makefile."""
    targets = makefile_targets(project(set_id))
    for path in workflow_paths(project(set_id)):
        text = path.read_text()
        assert "${{ github." in text and "raw %}" not in text, f"{path.name}: Jinja ate ${{{{ }}}}"
        workflow = yaml.safe_load(text)
        assert workflow["permissions"] == {"contents": "read"}, path.name
        assert "group" in workflow["concurrency"], path.name
        for job_id, job in workflow["jobs"].items():
            assert job.get("timeout-minutes"), f"{path.name}: {job_id} has no timeout"
            for step in job["steps"]:
                if "uses" in step:
                    line = next(li for li in text.splitlines() if f"uses: {step['uses']}" in li)
                    pin = line.split("uses: ", 1)[1]
                    assert ACTION_PIN.match(pin), f"{path.name}: {pin} is not pinned to a commit"
                for target in MAKE_CALL.findall(step.get("run", "")):
                    assert target in targets, f"{path.name} runs `make {target}`, not a target"


@pytest.mark.parametrize("set_id", sets_with(use_github_actions=True))
def test_ci_caches_uv_and_dvc_and_reports_metrics(project, set_id):
    ci = yaml.safe_load((project(set_id) / ".github" / "workflows" / "ci.yml").read_text())
    steps = [step for job in ci["jobs"].values() for step in job["steps"]]
    runs = "\n".join(step.get("run", "") for step in steps)
    for target in ("make precommit", "make lint", "make test", "make pipeline", "metrics-diff"):
        assert target in runs
    assert "$GITHUB_STEP_SUMMARY" in runs and "gh pr comment" in runs
    uv_steps = [s for s in steps if s.get("uses", "").startswith("astral-sh/setup-uv@")]
    assert any(s["with"].get("enable-cache") is True for s in uv_steps)
    [dvc_cache] = [s for s in steps if s.get("uses", "").startswith("actions/cache@")]
    assert ".dvc/cache" in dvc_cache["with"]["path"]
    assert ci["jobs"]["pipeline"]["permissions"]["pull-requests"] == "write"
    options = answers(set_id)
    assert ("image" in ci["jobs"]) == options["use_docker"]
    assert ("make image-test" in runs) == options["use_docker"]
    assert ("make k8s-render" in runs) == options["use_kubernetes"]


@pytest.mark.parametrize("set_id", sets_with(use_github_actions=True, use_docker=True))
def test_release_pushes_to_ghcr_with_sha_and_release_tags(project, set_id):
    path = project(set_id) / ".github" / "workflows" / "release.yml"
    release = yaml.safe_load(path.read_text())
    assert release[True] == {"release": {"types": ["published"]}}  # YAML 1.1 reads `on` as True
    [job] = release["jobs"].values()
    assert job["permissions"] == {"contents": "read", "packages": "write"}
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "ghcr.io/${GITHUB_REPOSITORY,,}" in runs and "${GITHUB_SHA::7}" in runs
    assert "github.event.release.tag_name" in path.read_text()
    assert "docker push" in runs and "make image-test" in runs


@pytest.mark.parametrize("set_id", sets_with(use_github_actions=True))
def test_ruleset_requires_the_ci_jobs(project, set_id):
    github = project(set_id) / ".github"
    ruleset = json.loads((github / "rulesets" / "main.json").read_text())
    rules = {rule["type"]: rule for rule in ruleset["rules"]}
    assert {"deletion", "non_fast_forward", "pull_request", "required_status_checks"} <= set(rules)
    checks = rules["required_status_checks"]["parameters"]["required_status_checks"]
    ci = yaml.safe_load((github / "workflows" / "ci.yml").read_text())
    assert {check["context"] for check in checks} == {job["name"] for job in ci["jobs"].values()}
    assert {check["integration_id"] for check in checks} == {15368}  # the GitHub Actions app


# --- pre-commit and secrets -------------------------------------------------------------------


@pytest.mark.parametrize("set_id", SET_IDS)
def test_precommit_hooks_run_tools_of_the_dev_group(project, once, set_id):
    config_path = project(set_id) / ".pre-commit-config.yaml"
    if once("pre-commit", config_path):
        run([tool("pre-commit"), "validate-config", str(config_path)], cwd=project(set_id))
    config = yaml.safe_load(config_path.read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    for wanted in ("ruff-check", "ruff-format", "nbstripout", "detect-secrets", "check-yaml",
                   "check-toml", "check-added-large-files"):  # fmt: skip
        assert wanted in hooks
    pyproject = (project(set_id) / "pyproject.toml").read_text()
    dev_group = pyproject.split("\ndev = [", 1)[1].split("\n]", 1)[0]
    for hook in hooks.values():
        program = Path(hook["entry"].split()[0]).name
        assert hook["entry"].startswith(".venv/bin/"), f"{hook['id']} must not download"
        assert f'"{HOOK_PACKAGES[program]}' in dev_group, f"{program} is not in the dev group"


@pytest.mark.parametrize("set_id", SET_IDS)
def test_no_secret_beyond_the_baseline(project, once, set_id):
    """detect-secrets, as the hook runs it, finds nothing in the files git tracks (each
    rendering of a file is scanned once)."""
    folder = project(set_id)
    files = run(["git", "ls-files"], cwd=folder).stdout.split()
    assert ".secrets.baseline" in files and ".pre-commit-config.yaml" in files
    baseline = json.loads((folder / ".secrets.baseline").read_text())
    assert baseline["results"] == {}
    new = [name for name in files if once(f"detect-secrets {name}", folder / name)]
    if new:
        run([tool("detect-secrets-hook"), "--baseline", ".secrets.baseline", *new], cwd=folder)
    assert run(["git", "status", "--porcelain"], cwd=folder).stdout == "", "baseline rewritten"


# --- Makefile ---------------------------------------------------------------------------------


@pytest.mark.parametrize("set_id", SET_IDS)
def test_makefile_has_the_delivery_targets_of_the_options(project, set_id):
    folder, options = project(set_id), answers(set_id)
    targets = makefile_targets(folder)
    docker = {"image", "run-image", "image-test", "up", "down"}
    assert {"precommit", "metrics-diff"} <= targets
    assert docker <= targets if options["use_docker"] else not docker & targets
    assert ("k8s-render" in targets) == options["use_kubernetes"]
    helped = run(["make", "help"], cwd=folder).stdout
    phony = re.search(r"^\.PHONY:(.*)$", (folder / "Makefile").read_text(), re.MULTILINE).group(1)
    for target in targets & (docker | {"precommit", "metrics-diff", "k8s-render"}):
        assert re.search(rf"^  {target} +\S", helped, re.MULTILINE), f"{target} has no help line"
        assert target in phony.split(), f"{target} is not .PHONY"
    if options["use_docker"]:
        dry = run(["make", "-n", "image", "up", "BUNDLE_DIR=models/bundle"], cwd=folder).stdout
        assert "docker build --build-arg BASE_IMAGE=python:" in dry
        assert "docker compose up --build --detach --wait" in dry


# The headings of `make help` (the Makefile's `##@` lines), in order; a group shows when the
# options leave it a target.
HELP_GROUPS = (
    "Setup",
    "M2 Reproducibility",
    "M3 Quality",
    "M4 Model serving",
    "M5 Delivery",
    "M6 Monitoring",
    "Course",
)


@pytest.mark.parametrize("set_id", SET_IDS)
def test_make_help_lists_every_documented_target_under_its_milestone(project, set_id):
    folder, options = project(set_id), answers(set_id)
    makefile = (folder / "Makefile").read_text()
    documented = re.findall(r"^## .*\n([a-z][a-z0-9-]*):", makefile, flags=re.MULTILINE)
    shown = run(["make", "--no-print-directory", "help"], cwd=folder).stdout
    groups: list[str] = []
    listed: dict[str, str] = {}
    for line in shown.splitlines():
        if line.startswith("  "):
            assert groups, f"{line.split()[0]} is listed before any group"
            assert line.split()[0] not in listed, f"{line.split()[0]} is listed twice"
            listed[line.split()[0]] = groups[-1]
        elif line:
            groups.append(line)
    assert groups == [group for group in HELP_GROUPS if group in groups], f"groups: {groups}"
    optional = {
        "M4 Model serving": options["use_api"],
        "M5 Delivery": options["use_docker"],
        "M6 Monitoring": options["use_monitoring"],
    }
    assert set(groups) == {group for group in HELP_GROUPS if optional.get(group, True)}
    assert sorted(listed) == sorted(documented)
    where = {"setup": "Setup", "pipeline": "M2 Reproducibility", "test": "M3 Quality"}
    where |= {"serve": "M4 Model serving"} if options["use_api"] else {}
    where |= {"image": "M5 Delivery"} if options["use_docker"] else {}
    where |= {"drift": "M6 Monitoring"} if options["use_monitoring"] else {}
    where |= {"milestones": "Course"}
    assert {target: listed[target] for target in where} == where


def test_docker_needs_the_api(tmp_path):
    """The image serves the API: the answers must not ask for Docker without it."""
    answers = {**DEFAULT, "use_api": False, "use_docker": True}
    with pytest.raises(Exception, match="use_api"):
        render(tmp_path, answers)
