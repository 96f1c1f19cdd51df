"""`make fetch-model`: download a registered model's bundle from the MLflow registry.

    python -m <package>.modeling.fetch models:/<name>@champion    # or models:/<name>/<version>

The download must be intact and be the model the registry names (same version, run id and
sha256); it is installed whole into models/fetched/ (or --destination), never models/bundle.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import mlflow
import typer
from mlflow.store.artifact.utils.models import get_model_name_and_version

from ..bundle import BundleError, BundleMetadata, install, read_verified
from ..config import BUNDLE_ARTIFACT, CHAMPION_ALIAS, FETCHED_BUNDLE_DIR, PARAMS_FILE
from ..errors import reported
from ..params import load_params
from ..tracking import connect, tracking_errors
from . import registry

app = typer.Typer(add_completion=False, help=__doc__)


def fetch(uri: str, destination: Path) -> BundleMetadata:
    """Download, check and install the bundle of the version that `uri` names."""
    client = connect()
    with tracking_errors():
        resolved = get_model_name_and_version(client, uri)
    if len(resolved) != 2:
        raise BundleError(f"{uri}: name a registered model, models:/<name>@<alias> or /<version>")
    name, version = resolved
    identity = registry.identity_of(client, name, version)
    if identity is None:
        raise BundleError(f"{name} version {version} has no bundle: it was not made by `export`")
    with tempfile.TemporaryDirectory() as scratch, tracking_errors():
        downloaded = mlflow.artifacts.download_artifacts(
            run_id=identity.run_id, artifact_path=BUNDLE_ARTIFACT, dst_path=scratch
        )
        metadata = read_verified(Path(downloaded))
        if metadata.identity != identity:
            raise BundleError(f"the bundle logged to run {identity.run_id} is not {identity}")
        return install(Path(downloaded), destination)


@app.command()
def main(
    uri: Annotated[
        str | None,
        typer.Argument(help="models:/<name>@<alias> or models:/<name>/<version>"),
    ] = None,
    destination: Path = FETCHED_BUNDLE_DIR,
    params_file: Path = PARAMS_FILE,
) -> None:
    """Download a registered model's bundle (default: the champion) into models/fetched/."""
    with reported("fetch-model"):
        if uri is None:
            uri = f"models:/{load_params(params_file).mlflow.registered_model}@{CHAMPION_ALIAS}"
        metadata = fetch(uri, destination)
    typer.echo(f"fetch-model: {uri} is {metadata.identity} -> {destination}")


if __name__ == "__main__":
    app()
