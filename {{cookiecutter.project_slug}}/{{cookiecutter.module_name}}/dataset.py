"""Stage `data`: acquire the raw dataset into data/raw/ (read-only) and record its content hash.

The source is the built-in data set (builtin_data.py), or with `data.source: csv` the team's own
comma-separated file or http(s) URL in `data.csv`, or with `data.source: folder` (pictures) the
manifest of the team's folder of <label>/<picture> files in `data.folder`. Column names become
clean identifiers.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pandas as pd
import typer

from . import builtin_data
from .bundle import file_digest
from .config import PARAMS_FILE, PROJ_ROOT, RAW_DATASET, RAW_METADATA
from .errors import PipelineError, reported
from .params import DataParams, load_params

app = typer.Typer(add_completion=False, help=__doc__)

# Separators people use instead of commas: a file that uses one reads as a single column.
OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "pipes"}


class DataError(PipelineError):
    """The raw data cannot be acquired as configured."""


def clean_name(name: str) -> str:
    """Make a column name a lowercase identifier: "mean radius" -> "mean_radius"."""
    cleaned = re.sub(r"[^0-9a-zA-Z]+", "_", str(name).strip()).strip("_").lower()
    if not cleaned:
        raise DataError(f"column name {name!r} has no letters or digits")
    return f"col_{cleaned}" if cleaned[0].isdigit() else cleaned


def clean_columns(frame: pd.DataFrame, shown: str) -> pd.DataFrame:
    """`frame` with clean column names; DataError when two names become the same."""
    cleaned = [clean_name(name) for name in frame.columns]
    twice = sorted({name for name in cleaned if cleaned.count(name) > 1})
    if twice:
        sources = [str(o) for o, c in zip(frame.columns, cleaned, strict=True) if c == twice[0]]
        raise DataError(f"{shown}: the columns {sources} all become {twice[0]!r}: rename one")
    return frame.set_axis(cleaned, axis="columns")


def read_csv_file(path: Path | str, shown: str) -> pd.DataFrame:
    """Read a comma-separated file or URL; DataError says in one line why it cannot be read."""
    try:
        frame = pd.read_csv(path, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise DataError(f"{shown} is empty") from None
    except UnicodeDecodeError as error:
        raise DataError(
            f"{shown} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
            f"{error.start}): is it a CSV file?"
        ) from None
    except pd.errors.ParserError as error:
        detail = (
            str(error).strip().splitlines()[-1].removeprefix("Error tokenizing data. C error: ")
        )
        raise DataError(f"{shown} is not a regular CSV file: {detail}") from None
    if len(frame.columns) == 1:
        header = str(frame.columns[0])
        for separator, name in OTHER_SEPARATORS.items():
            if separator in header:
                columns = ", ".join(repr(part) for part in header.split(separator)[:6])
                raise DataError(
                    f"{shown} separates its values with {name}, not commas (its header reads as "
                    f"the columns {columns}{', ...' if header.count(separator) > 5 else ''}): "
                    "save it as comma-separated"
                )
    if frame.empty:
        raise DataError(f"{shown} has a header but no rows")
    return frame


def read_csv_source(location: str, target: str) -> pd.DataFrame:
    """Read a CSV from a path (relative to the project) or an http(s) URL."""
    if not location:
        raise DataError("data.source is csv but data.csv is empty: set a path or URL")
    if location.startswith(("http://", "https://")):
        try:
            frame = read_csv_file(location, location)  # pandas downloads it
        except OSError as error:
            raise DataError(f"could not download {location}: {error}") from None
    else:
        path = Path(location)
        path = path if path.is_absolute() else PROJ_ROOT / path
        if not path.is_file():
            raise DataError(f"data.csv points at {path}, which is not a file")
        frame = read_csv_file(path, location)
    frame = clean_columns(frame, location)
    if clean_name(target) not in frame.columns:
        raise DataError(f"the target column {target!r} (data.target) is not in {location}")
    return frame


def load_source(params: DataParams) -> pd.DataFrame:
    """The raw dataset as configured in the `data` section of params.yaml."""
    # ---- TEAM: your data source. Add a choice to DataParams.source in params.py, read it here.
    if params.source == "csv":
        frame = read_csv_source(params.csv, params.target)
    elif params.source == "folder":  # params.py allows it with an `images:` section only
        frame = builtin_data.folder_dataset(PROJ_ROOT / params.folder, clean_name(params.target))
    else:
        frame = clean_columns(builtin_data.builtin_dataset(params.target), "the built-in data")
    # ---- end TEAM ----
    return frame


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
        "sha256": file_digest(output_path),
        "rows": len(frame),
        "columns": list(frame.columns),
    }
    metadata_path.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata


@app.command()
def main(
    output_path: Path = RAW_DATASET,
    metadata_path: Path = RAW_METADATA,
    params_file: Path = PARAMS_FILE,
) -> None:
    """Acquire the raw dataset named in params.yaml."""
    with reported("data"):
        params = load_params(params_file).data
        frame = load_source(params)
    source = {"csv": params.csv, "folder": params.folder}.get(params.source, "builtin")
    metadata = write_raw(frame, output_path, metadata_path, source)
    typer.echo(f"data: {metadata['rows']} rows, sha256 {metadata['sha256'][:12]} -> {output_path}")


if __name__ == "__main__":
    app()
