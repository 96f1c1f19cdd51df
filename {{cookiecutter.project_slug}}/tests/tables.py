"""The tables the tests use: the project's configured data, and a made-up table.

Test support, kept out of the package. Every test that trains, serves or watches a model on real
data gets that data here: the source configured in params.yaml (`data`) read as the `data` stage
reads it, and split as the `features` stage splits it. So after `make data-new` the tests run on
the team's own data; only tests/test_default_data.py checks facts of the built-in data set, and
it skips itself on other data. `mixed_frame` is a made-up table with every kind of
column, for the tests of code that must handle each kind, whatever the project's data holds.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from {{ cookiecutter.module_name }}.bundle import (
    Kind,
)
from {{ cookiecutter.module_name }}.dataset import (
    load_source,
)
from {{ cookiecutter.module_name }}.features import (
    split,
)
from {{ cookiecutter.module_name }}.modeling.splits import (
    feature_kinds,
)
from {{ cookiecutter.module_name }}.params import (
    DataParams,
    Params,
    load_params,
)


def is_builtin() -> bool:
    """Whether the project runs on the built-in data."""
    return load_params().data.source == "builtin"


@cache
def _raw_frame() -> pd.DataFrame:
    return load_source(load_params().data)


def raw_frame() -> pd.DataFrame:
    """The configured data, as the `data` stage reads it (a copy: change it at will)."""
    return _raw_frame().copy()


def splits(params: Params | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The train and test splits of the configured data, as the `features` stage makes them."""
    params = params or load_params()
    return split(raw_frame(), params.data.target, params.features, params.data.columns)


def kinds(params: Params | None = None) -> dict[str, Kind]:
    """The configured data's features and their kinds, as `train` decides them."""
    params = params or load_params()
    return feature_kinds(list(raw_frame().columns), params.data.target, params.data.columns)


def manifest_frame(per_class: int = 20) -> tuple[pd.DataFrame, DataParams]:
    """A made-up manifest of pictures (no files behind it), as builtin_data.manifest describes a
    folder of cats and dogs, and the `data` settings of a project that reads it: the shared
    stages' handling of pictures is tested with it, whatever the project's own data holds."""
    rows = [
        {
            "image": f"data/external/images/{label}/{i:03d}.png",
            "animal": label,
            "bytes": 700 + i,
            "sha256": f"{label}{i:061d}",
            "readable": True,
            "width": 32,
            "height": 32,
            "mode": "RGB",
        }
        for label in ("cat", "dog")
        for i in range(per_class)
    ]
    described = ("bytes", "sha256", "readable", "width", "height", "mode")
    columns = {"image": "image", **dict.fromkeys(described, "ignore")}
    data = DataParams(
        source="folder", folder="data/external/images", target="animal", columns=columns
    )
    return pd.DataFrame(rows), data


def mixed_frame(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, DataParams]:
    """A made-up table with numeric, category and text columns and three classes, and the `data`
    settings that describe it: the service's handling of every kind of input is tested with it,
    whatever the project's own data holds."""
    rng = np.random.default_rng(seed)
    label = rng.choice(["low", "mid", "high"], rows)
    level = {"low": 0.0, "mid": 1.0, "high": 2.0}
    words = {"low": "calm quiet steady", "mid": "busy mixed usual", "high": "loud urgent spike"}
    frame = pd.DataFrame(
        {
            "reading": [level[x] + rng.normal(0, 0.5) for x in label],
            "count": rng.integers(0, 100, rows).astype(float),
            "site": [f"site-{int(level[x]) if rng.random() < 0.8 else 3}" for x in label],
            "note": [
                f"{rng.choice(words[x].split())} day, report {i}" for i, x in enumerate(label)
            ],
            "band": label,
        }
    )
    columns = {"site": "category", "note": "text"}
    return frame, DataParams(source="csv", csv="mixed.csv", target="band", columns=columns)
