"""MLflow, set up once: the tracking store, the experiment, and one-line errors.

Every stage that talks to MLflow calls `connect()` first: it fails within seconds when the SQLite
file is read-only or the tracking server does not answer (MLflow alone retries for minutes), and
marks FAILED the runs of this machine that a killed stage left RUNNING. `with tracking_errors():`
turns MLflow, database and network errors into a one-line TrackingError. `python -m
<package>.tracking` (`make mlflow-server`) starts a tracking server once its database
(MLFLOW_BACKEND_STORE_URI) answers, or says within seconds why it cannot be used.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
import typer
from mlflow import MlflowClient

from .config import mlflow_tracking_uri
from .errors import PipelineError, reported

# Seconds a tracking server gets to answer its health check.
SERVER_TIMEOUT_SECONDS = 5
# Tags that say which process owns a run, so a run whose process died can be closed.
HOST_TAG = "host"
PID_TAG = "pid"
# Libraries whose errors reach us through MLflow unwrapped.
UNWRAPPED = ("sqlalchemy", "requests", "urllib3")


class TrackingError(PipelineError):
    """The MLflow store cannot be used; the message says why and what to do."""


def sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def check_store(uri: str) -> None:
    database = sqlite_path(uri)
    if database is not None:
        for path in (database, database.parent):
            if path.exists() and not os.access(path, os.R_OK | os.W_OK):
                raise TrackingError(
                    f"the MLflow store {path} is read-only for this user: make it writable "
                    f"(chmod u+rw {path}) or point MLFLOW_TRACKING_URI elsewhere"
                )
        return
    if uri.startswith(("http://", "https://")):
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request

        creds = get_default_host_creds(uri)
        try:
            http_request(
                creds, "/health", "GET", max_retries=0, timeout=SERVER_TIMEOUT_SECONDS
            ).raise_for_status()
        except Exception as error:  # requests and MLflow raise their own types
            raise TrackingError(
                f"the MLflow tracking server {uri} does not answer ({first_line(error)}): "
                "start it (see the README) or unset MLFLOW_TRACKING_URI to use mlflow.db"
            ) from None


def first_line(error: BaseException) -> str:
    """The operating system's reason when there is one, else the error's first line."""
    text = str(error).strip()
    reason = re.search(r"\[Errno -?\d+\] ([^\"')]+)", text)
    if reason:
        return reason.group(1).strip().lower()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


@contextmanager
def tracking_errors() -> Iterator[None]:
    """Turn MLflow, database and network failures inside the block into a TrackingError."""
    try:
        yield
    except Exception as error:
        unwrapped = type(error).__module__.split(".")[0] in UNWRAPPED
        if not (unwrapped or isinstance(error, mlflow.exceptions.MlflowException | OSError)):
            raise  # a bug
        message = f"MLflow at {mlflow_tracking_uri()} failed: {first_line(error)}"
        raise TrackingError(message) from None


def connect(experiment: str | None = None) -> MlflowClient:
    """Point MLflow at the project's store (and experiment, creating it if needed)."""
    uri = mlflow_tracking_uri()
    check_store(uri)
    # MLflow's INFO lines (database migrations, environment detection) are noise in a stage.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    with tracking_errors():
        if experiment is not None:
            database = sqlite_path(uri)
            if database is not None and mlflow.get_experiment_by_name(experiment) is None:
                # Artifacts beside the database file, not wherever the process happens to run.
                location = (database.resolve().parent / "mlruns").as_uri()
                mlflow.create_experiment(experiment, artifact_location=location)
            experiment_id = mlflow.set_experiment(experiment).experiment_id
            fail_abandoned_runs(MlflowClient(), experiment_id)
        return MlflowClient()


def owner_tags() -> dict[str, str]:
    """Tags for a new run: which process of which machine writes it."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def process_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    return True


def fail_abandoned_runs(client: MlflowClient, experiment_id: str) -> None:
    """Mark FAILED the RUNNING runs that a process of this machine started and that is gone."""
    host = socket.gethostname()
    for run in client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=100
    ):
        tags = run.data.tags
        pid = tags.get(PID_TAG, "")
        if tags.get(HOST_TAG) == host and pid.isdigit() and not process_is_alive(int(pid)):
            client.set_terminated(run.info.run_id, status="FAILED")
            print(f"tracking: run {run.info.run_id} was left RUNNING by a killed stage: FAILED")


def check_database(uri: str) -> None:
    """Fail within seconds, with the database's own reason, when the SQLAlchemy URL `uri` (what
    `mlflow server --backend-store-uri` takes) cannot be opened."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    try:
        url = sqlalchemy.engine.make_url(uri)
    except sqlalchemy.exc.ArgumentError:
        raise TrackingError(f"MLFLOW_BACKEND_STORE_URI is not a database URL: {uri!r}") from None
    shown = url.render_as_string(hide_password=True)
    # A database server gets SERVER_TIMEOUT_SECONDS to answer (else minutes); a file needs none.
    is_file = url.get_backend_name() == "sqlite"
    timeout = {} if is_file else {"connect_timeout": SERVER_TIMEOUT_SECONDS}
    try:
        with sqlalchemy.create_engine(url, connect_args=timeout, poolclass=NullPool).connect():
            pass
    except (sqlalchemy.exc.SQLAlchemyError, ImportError) as error:
        reason = first_line(getattr(error, "orig", None) or error)
        reason = re.sub(r"^connection to server at .*? failed: ", "", reason)
        raise TrackingError(
            f"the database {shown} cannot be used ({reason}): start its server, create the user "
            "and the database that MLFLOW_BACKEND_STORE_URI names, or correct it in .env"
        ) from None


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def server() -> None:
    """Start `mlflow server` where MLFLOW_TRACKING_URI says, on MLFLOW_BACKEND_STORE_URI."""
    with reported("mlflow-server"):
        store = os.environ.get("MLFLOW_BACKEND_STORE_URI")
        address = urlsplit(mlflow_tracking_uri())
        if not store:
            raise TrackingError("MLFLOW_BACKEND_STORE_URI is not set: copy .env.example to .env")
        if address.scheme != "http" or not address.hostname:
            raise TrackingError(
                f"MLFLOW_TRACKING_URI is {mlflow_tracking_uri()}, not the http:// address the "
                "server should listen at (see .env.example)"
            )
        check_database(store)
    port = str(address.port or 5000)
    typer.echo(f"MLflow tracking server at http://{address.hostname}:{port} (Ctrl-C stops it)")
    command = ["mlflow", "server", "--host", address.hostname, "--port", port]
    os.execv(sys.executable, [sys.executable, "-m", *command])


if __name__ == "__main__":
    app()
