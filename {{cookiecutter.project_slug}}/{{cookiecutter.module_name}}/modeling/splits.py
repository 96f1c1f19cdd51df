"""The processed splits as the modelling stages read them: typed features and text labels.

`train` takes the features and their kinds from `data.columns` (`feature_kinds`); the later
stages take those the candidate or the bundle records. Features come in kind order (numeric,
category, text), the bundle contract's; numbers as floats, the rest as strings (a missing value
empty, a text's whitespace collapsed as the model reads it). An image column holds paths to
pictures: its features are the pictures' pixel values (images.py), one column per value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..bundle import KINDS, Feature, ImageFeature, Kind, collapsed
from ..config import PROJ_ROOT
from ..errors import PipelineError
from ..params import ColumnKind, Params


class SplitError(PipelineError):
    """A processed split is missing, lacks a column or holds what its kind cannot."""


def feature_kinds(
    columns: Sequence[str], target: str, declared: Mapping[str, ColumnKind]
) -> dict[str, Kind]:
    """Every column but the target and the ignored ones, in kind order, numeric unless
    `data.columns` says otherwise."""
    unknown = sorted(set(declared) - set(columns))
    if unknown:
        raise SplitError(f"data.columns names {unknown}, which the data does not have")
    kinds = {name: declared.get(name, "numeric") for name in columns if name != target}
    ordered = {name: kind for wanted in KINDS for name, kind in kinds.items() if kind == wanted}
    if not ordered:
        raise SplitError("the data has no feature column: data.columns ignores every one")
    return ordered  # type: ignore[return-value]  # "ignore" is never a KINDS value


def kinds_of(features: Sequence[Feature]) -> dict[str, Kind]:
    return {feature.name: feature.kind for feature in features}


def image_of(features: Sequence[Feature]) -> ImageFeature | None:
    return next((f for f in features if isinstance(f, ImageFeature)), None)


def image_feature(kinds: dict[str, Kind], params: Params) -> ImageFeature | None:
    """How the model reads the image column, if the data has one (the `images` section)."""
    names = [name for name, kind in kinds.items() if kind == "image"]
    if not names:
        return None
    if params.images is None or len(kinds) > 1:
        raise SplitError(
            "an image model reads one image column, sized by the `images` section of params.yaml"
        )
    return ImageFeature(name=names[0], **params.images.model_dump())


def pixel_columns(paths: pd.Series, image: ImageFeature) -> pd.DataFrame:
    """The pixel values of the pictures at `paths` (relative to the project), one column each."""
    from .. import images  # Pillow: image projects only

    try:
        values = [images.load_pixels(PROJ_ROOT / str(path), image) for path in paths]
    except images.ImageError as error:
        raise SplitError(str(error)) from None
    columns = [f"{image.name}_{index}" for index in range(image.size)]
    return pd.DataFrame(values, columns=columns, index=paths.index, dtype="float64")


def features_and_labels(
    frame: pd.DataFrame, target: str, kinds: Mapping[str, Kind], image: ImageFeature | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """A processed frame's features (in the order of `kinds`, typed) and labels (as text);
    `image` says how to read the pictures of an image column."""
    missing = [name for name in (target, *kinds) if name not in frame.columns]
    if missing:
        raise SplitError(f"the data lacks the columns {missing}")
    if image is not None:
        return pixel_columns(frame[image.name], image), frame[target].astype(str)
    features = pd.DataFrame(index=frame.index)
    for name, kind in kinds.items():
        column = frame[name]
        if kind == "numeric":
            converted = pd.to_numeric(column, errors="coerce")
            bad = column[converted.isna() & column.notna()]
            if len(bad):
                raise SplitError(
                    f"column {name!r} holds {bad.iloc[0]!r}, which is not a number: declare it "
                    "in data.columns of params.yaml as category or text (or ignore)"
                )
            features[name] = converted.astype("float64")
        elif kind == "text":
            features[name] = column.fillna("").astype(str).map(collapsed)
        else:
            features[name] = column.fillna("").astype(str)
    return features, frame[target].astype(str)


def recorded_features(
    frame: pd.DataFrame, target: str, features: Sequence[Feature]
) -> tuple[pd.DataFrame, pd.Series]:
    """A frame's features and labels as a candidate or bundle with `features` reads them."""
    return features_and_labels(frame, target, kinds_of(features), image_of(features))


def read_frame(path: Path) -> pd.DataFrame:
    """A split of the `features` stage, every column as text (a category "01" stays "01")."""
    if not path.is_file():
        raise SplitError(f"{path} is missing: run the `features` stage first (dvc repro)")
    return pd.read_csv(path, dtype=str)


def read_split(
    path: Path, target: str, kinds: Mapping[str, Kind], image: ImageFeature | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    return features_and_labels(read_frame(path), target, kinds, image)
