"""Fetch the bundle of a registered model from an MLflow tracking server, over plain HTTP.

With `API_MODEL_URI=models:/<name>@<alias>` (or `models:/<name>/<version>`) and an http(s)
`MLFLOW_TRACKING_URI`, the service asks the server's REST API which version and run the alias
points at, downloads the `bundle/` that the `export` stage logged to that run (`metadata.json`,
`model.onnx`) into a folder of API_MODEL_CACHE_DIR, checks the model's sha256 against the
metadata, and then loads that folder like any bundle.

Only the standard library talks to the server, so the service still installs without MLflow.
All requests together are bounded by API_MODEL_TIMEOUT_SECONDS. A cached folder is named after
the version and the sha256 of its metadata.json and never changed once written: a restart with
the same bundle downloads only metadata.json, and workers that start together cannot see each
other's half-written files.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from {{ cookiecutter.module_name }}.api.bundle import (
    METADATA_FILE,
    BundleError,
)
from {{ cookiecutter.module_name }}.api.settings import (
    Settings,
)

logger = logging.getLogger(__name__)

# Where the `export` stage logs the bundle inside the champion's run.
BUNDLE_ARTIFACT_PATH = "bundle"
MODEL_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))")
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version and the run whose artifacts hold its bundle."""

    name: str
    version: int
    run_id: str


class TrackingServer:
    """GET requests to an MLflow tracking server, all of them within one deadline."""

    def __init__(self, base_url: str, timeout: float, headers: dict[str, str]) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = headers
        self.deadline = time.monotonic() + timeout

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return remaining

    def _open(self, path: str, params: dict[str, str] | None, what: str) -> Any:
        url = f"{self.base_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(url, headers=self.headers)
        try:
            return urllib.request.urlopen(request, timeout=self._remaining())
        except urllib.error.HTTPError as error:
            raise BundleError(f"{what}: HTTP {error.code}, {server_message(error)}") from None
        except TimeoutError:
            raise self._timed_out(what) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError):  # urllib wraps a connect timeout
                raise self._timed_out(what) from None
            raise BundleError(
                f"cannot reach the MLflow tracking server at {self.base_url} ({what}): {reason}"
            ) from None

    def _timed_out(self, what: str) -> BundleError:
        return BundleError(
            f"the MLflow tracking server at {self.base_url} did not answer within "
            f"API_MODEL_TIMEOUT_SECONDS ({self.timeout:g} s) ({what})"
        )

    def get_json(self, path: str, params: dict[str, str], what: str) -> dict[str, Any]:
        """The JSON answer of a REST endpoint; BundleError naming `what` if there is none."""
        content = self.get_bytes(path, params, what)
        try:
            answer = json.loads(content)
        except ValueError:
            raise BundleError(f"{what}: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise BundleError(f"{what}: unexpected answer {content[:200]!r}")
        return answer

    def get_bytes(self, path: str, params: dict[str, str] | None, what: str) -> bytes:
        """The body of a GET, read in chunks so the deadline also bounds a slow transfer."""
        with self._open(path, params, what) as response:
            chunks = []
            try:
                while chunk := response.read(CHUNK_BYTES):
                    chunks.append(chunk)
                    self._remaining()
            except TimeoutError:
                raise self._timed_out(what) from None
            except (OSError, http.client.HTTPException) as error:
                raise BundleError(f"{what}: the transfer broke off: {error!r}") from None
        return b"".join(chunks)


def server_message(error: urllib.error.HTTPError) -> str:
    """MLflow's own explanation of an error answer, e.g. `Registered model alias x not found.`"""
    try:
        body = json.loads(error.read(64_000))
        return str(body.get("message") or body)
    except (ValueError, OSError, AttributeError):
        return str(error.reason)


def parse_model_uri(uri: str) -> tuple[str, str | None, int | None]:
    """`models:/name@alias` -> (name, alias, None); `models:/name/3` -> (name, None, 3)."""
    match = MODEL_URI.fullmatch(uri.strip())
    if match is None:
        raise BundleError(
            f"API_MODEL_URI={uri!r} is not of the form models:/<name>@<alias> "
            "(or models:/<name>/<version>)"
        )
    version = match["version"]
    return match["name"], match["alias"], int(version) if version else None


def auth_headers(settings: Settings) -> dict[str, str]:
    """The credentials MLflow's own client would send (MLFLOW_TRACKING_TOKEN or user/password)."""
    if settings.tracking_token is not None:
        return {"Authorization": f"Bearer {settings.tracking_token.get_secret_value()}"}
    if settings.tracking_username and settings.tracking_password is not None:
        pair = f"{settings.tracking_username}:{settings.tracking_password.get_secret_value()}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
    return {}


def resolve(server: TrackingServer, uri: str) -> ModelVersion:
    """The version and run that `uri` names, according to the model registry."""
    name, alias, version = parse_model_uri(uri)
    if alias is not None:
        answer = server.get_json(
            "/api/2.0/mlflow/registered-models/alias",
            {"name": name, "alias": alias},
            f"looking up {uri}",
        )
    else:
        answer = server.get_json(
            "/api/2.0/mlflow/model-versions/get",
            {"name": name, "version": str(version)},
            f"looking up {uri}",
        )
    found = answer.get("model_version") or {}
    if not found.get("run_id") or not str(found.get("version", "")).isdigit():
        raise BundleError(f"{uri} names a model version without a run: {found}")
    return ModelVersion(name=name, version=int(found["version"]), run_id=found["run_id"])


def artifact_root(server: TrackingServer, run_id: str) -> str:
    """Where the run keeps its artifacts, e.g. `mlflow-artifacts:/1/<run id>/artifacts`."""
    run = server.get_json("/api/2.0/mlflow/runs/get", {"run_id": run_id}, f"reading run {run_id}")
    return str(run.get("run", {}).get("info", {}).get("artifact_uri", ""))


def artifact_request(root: str, run_id: str, file: str) -> tuple[str, dict[str, str] | None]:
    """The path (and query) that downloads `bundle/<file>` of the run from the server.

    Artifacts that the server proxies (`mlflow-artifacts:/...`, what `mlflow server` does by
    default) come from its artifact service; others through `/get-artifact`, which reads the
    run's artifact store on the server's side."""
    relative = f"{BUNDLE_ARTIFACT_PATH}/{file}"
    proxied = urllib.parse.urlsplit(root)
    if proxied.scheme == "mlflow-artifacts":
        path = urllib.parse.quote(f"{proxied.path.strip('/')}/{relative}")
        return f"/api/2.0/mlflow-artifacts/artifacts/{path}", None
    return "/get-artifact", {"path": relative, "run_uuid": run_id}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def check_metadata(content: bytes, found: ModelVersion, uri: str) -> dict[str, Any]:
    """The logged metadata.json, which must describe the version that the registry named."""
    try:
        metadata = json.loads(content)
        described = (metadata["registered_model"], int(metadata["model_version"]))
        model_file, model_sha256 = metadata["onnx"]["file"], metadata["onnx"]["sha256"]
    except (ValueError, KeyError, TypeError):
        raise BundleError(
            f"{BUNDLE_ARTIFACT_PATH}/{METADATA_FILE} of run {found.run_id} is not a bundle "
            "description: re-run the `export` stage"
        ) from None
    if described != (found.name, found.version):
        raise BundleError(
            f"{uri} is {found.name} version {found.version}, but the bundle logged to run "
            f"{found.run_id} describes {described[0]} version {described[1]}"
        )
    if Path(model_file).name != model_file:
        raise BundleError(f"metadata.json of run {found.run_id} names the file {model_file!r}")
    return {"file": model_file, "sha256": model_sha256}


def fetch_bundle(settings: Settings) -> Path:
    """Download the bundle of `settings.model_uri` (unless cached); return its local folder."""
    uri = settings.model_uri
    tracking_uri = settings.tracking_uri
    if urllib.parse.urlsplit(tracking_uri).scheme not in ("http", "https"):
        raise BundleError(
            f"API_MODEL_URI={uri} needs an MLflow tracking server, but MLFLOW_TRACKING_URI is "
            f"{tracking_uri or 'unset'}: set it to the server's http(s) address, or unset "
            "API_MODEL_URI to serve the bundle folder API_BUNDLE_DIR"
        )
    server = TrackingServer(tracking_uri, settings.model_timeout_seconds, auth_headers(settings))
    found = resolve(server, uri)
    root = artifact_root(server, found.run_id)
    where = f"{BUNDLE_ARTIFACT_PATH}/ of run {found.run_id} ({found.name} version {found.version})"
    path, query = artifact_request(root, found.run_id, METADATA_FILE)
    metadata_bytes = server.get_bytes(path, query, f"downloading {METADATA_FILE} from {where}")
    expected = check_metadata(metadata_bytes, found, uri)

    model_dir = settings.model_cache_dir / safe_name(found.name)
    folder = model_dir / f"v{found.version}-{hashlib.sha256(metadata_bytes).hexdigest()[:16]}"
    if intact(folder, expected):
        logger.info("%s: using the copy cached in %s", uri, folder)
        return folder

    path, query = artifact_request(root, found.run_id, expected["file"])
    model_bytes = server.get_bytes(path, query, f"downloading {expected['file']} from {where}")
    digest = hashlib.sha256(model_bytes).hexdigest()
    if digest != expected["sha256"]:
        raise BundleError(
            f"{expected['file']} of {where} has sha256 {digest[:12]}..., its metadata.json "
            f"expects {expected['sha256'][:12]}...: the logged bundle is damaged, re-export it"
        )
    files = {expected["file"]: model_bytes, METADATA_FILE: metadata_bytes}
    try:
        store(folder, files, expected)
    except OSError as error:
        raise BundleError(f"cannot write the downloaded bundle to {model_dir}: {error}") from None
    prune(model_dir, keep=folder)
    logger.info("%s: downloaded %s to %s", uri, where, folder)
    return folder


def store(folder: Path, files: dict[str, bytes], expected: dict[str, Any]) -> None:
    """Write `files` as `folder`, whole or not at all: a staging folder renamed into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=folder.parent))
    try:
        for name, content in files.items():
            (staging / name).write_bytes(content)
        staging.chmod(0o755)  # mkdtemp makes it private; the service may run as another user
        try:
            staging.rename(folder)
        except OSError:
            if not intact(folder, expected):  # not another worker's identical copy
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # still there only if the rename failed


def intact(folder: Path, expected: dict[str, Any]) -> bool:
    """Whether `folder` holds the model that the metadata expects."""
    try:
        return sha256_file(folder / expected["file"]) == expected["sha256"]
    except OSError:
        return False


def safe_name(name: str) -> str:
    """A registered model name as one folder name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def prune(model_dir: Path, keep: Path) -> None:
    """Drop the cached copies of other versions: only the served one is worth keeping."""
    for folder in model_dir.glob("v*"):
        if folder != keep:
            shutil.rmtree(folder, ignore_errors=True)
