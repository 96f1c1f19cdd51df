"""Stage `data`: acquire the raw dataset into data/raw/ and record its content hash.

The default source is scikit-learn's breast-cancer data, which ships with the package, so the
pipeline runs offline. A team points `data.source: csv` and `data.csv` in params.yaml at its own
file or http(s) URL. Column names are made into clean identifiers. The raw file is written once
per run and made read-only: later stages read it, none changes it.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from {{ cookiecutter.module_name }}.config import (
    PROJ_ROOT,
    RAW_DATASET,
    RAW_METADATA,
    load_params,
)

app = typer.Typer(add_completion=False, help=__doc__)


class DataError(ValueError):
    """The raw data cannot be acquired as configured."""


def clean_name(name: str) -> str:
    """Make a column name a lowercase identifier: "mean radius" -> "mean_radius"."""
    cleaned = re.sub(r"[^0-9a-zA-Z]+", "_", str(name).strip()).strip("_").lower()
    if not cleaned:
        raise DataError(f"column name {name!r} has no letters or digits")
    return f"col_{cleaned}" if cleaned[0].isdigit() else cleaned


def builtin_dataset(target: str) -> pd.DataFrame:
    """scikit-learn's breast-cancer data with clean names and the label as text."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.drop(columns="target").rename(columns=clean_name)
    frame[target] = [str(bunch.target_names[code]) for code in bunch.target]
    return frame


def read_csv_source(location: str, target: str) -> pd.DataFrame:
    """Read a CSV from a path (relative to the project) or an http(s) URL."""
    if not location:
        raise DataError("data.source is csv but data.csv is empty: set a path or URL")
    if location.startswith(("http://", "https://")):
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / "download.csv"
            try:
                urllib.request.urlretrieve(location, local)
            except OSError as error:
                raise DataError(f"could not download {location}: {error}") from error
            frame = pd.read_csv(local)
    else:
        path = Path(location)
        path = path if path.is_absolute() else PROJ_ROOT / path
        if not path.is_file():
            raise DataError(f"data.csv points at {path}, which is not a file")
        frame = pd.read_csv(path)
    frame = frame.rename(columns=clean_name)
    if clean_name(target) not in frame.columns:
        raise DataError(f"the target column {target!r} is not in {location}")
    if frame.empty:
        raise DataError(f"{location} holds no rows")
    return frame


def load_source(data_params: dict[str, Any]) -> pd.DataFrame:
    """The raw dataset as configured in the `data` section of params.yaml."""
    source, target = data_params["source"], data_params["target"]
    if source == "builtin":
        return builtin_dataset(target)
    if source == "csv":
        return read_csv_source(str(data_params.get("csv") or ""), target)
    raise DataError(f"data.source must be builtin or csv, not {source!r}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_raw(frame: pd.DataFrame, output_path: Path, metadata_path: Path, source: str) -> dict:
    """Write the raw CSV read-only and its metadata (content hash, shape); return the metadata."""
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if output_path.exists():
        output_path.chmod(stat.S_IWUSR | stat.S_IRUSR)
        output_path.unlink()
    frame.to_csv(output_path, index=False)
    output_path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    metadata = {
        "source": source,
        "sha256": file_sha256(output_path),
        "rows": len(frame),
        "columns": list(frame.columns),
    }
    metadata_path.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata


@app.command()
def main(
    output_path: Path = RAW_DATASET,
    metadata_path: Path = RAW_METADATA,
) -> None:
    """Acquire the raw dataset named in params.yaml."""
    data_params = load_params()["data"]
    try:
        frame = load_source(data_params)
    except DataError as error:
        typer.echo(f"data: {error}", err=True)
        raise typer.Exit(1) from error
    source = data_params.get("csv") if data_params["source"] == "csv" else "builtin"
    metadata = write_raw(frame, output_path, metadata_path, str(source))
    typer.echo(f"data: {metadata['rows']} rows, sha256 {metadata['sha256'][:12]} -> {output_path}")


if __name__ == "__main__":
    app()
