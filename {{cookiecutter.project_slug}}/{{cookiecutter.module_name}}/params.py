"""params.yaml as typed settings: read once, checked once, then passed to each stage by section.

Each section is a pydantic model: a stage reads `params.train.n_estimators` as an int, and YAML's
ambiguities are coerced (`dvc exp run -S train.C=1e-6` writes `1e-06`, which PyYAML reads as a
string). A bad value or an unknown key stops the stage with one line naming the key and the rule.
params.yaml's comments say what each key means. To add a parameter: add it to params.yaml and to
its section here, with its rule.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .config import PARAMS_FILE
from .errors import PipelineError

# The test metrics the gate can use (modeling/scoring.py computes them); the `positive_` ones are
# of `data.positive_label`'s class, so they exist only when it is set (binary targets).
Metric = Literal[
    "accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro", "roc_auc",
    "positive_precision", "positive_recall", "positive_f1",
]  # fmt: skip
POSITIVE_METRICS = ("positive_precision", "positive_recall", "positive_f1")
# What a column of the data is to the model; `ignore` keeps it out of the model (an id, a name).
ColumnKind = Literal["numeric", "category", "text", "image", "ignore"]


class ParamsError(PipelineError):
    """params.yaml cannot be read or breaks a rule."""


class Section(BaseModel):
    # A misspelt key is an error, never a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class DataParams(Section):
    source: Literal["builtin", "csv", "folder"]
    csv: str = ""
    folder: str = ""
    target: str = Field(min_length=1)
    positive_label: str | None = Field(default=None, min_length=1)
    columns: dict[str, ColumnKind] = {}
    allow_leaky_features: list[str] = []


class FeaturesParams(Section):
    test_size: float = Field(gt=0, lt=1)
    random_state: int


class TrainParams(Section):
    model: Literal["random_forest", "logistic_regression", "mlp", "onnx"]
    onnx_file: str = ""  # onnx: a network trained elsewhere (image projects: docs/the-task.md)
    n_estimators: int = Field(ge=1)
    max_depth: int | None = Field(ge=1)
    C: float = Field(gt=0)
    hidden_layers: list[Annotated[int, Field(ge=1)]] = Field(default=[128], min_length=1)
    random_state: int


class GateParams(Section):
    minimum: dict[Metric, Annotated[float, Field(ge=0, le=1)]]
    compare_on: Metric
    allow_perfect: bool = False


# ---- make tune (modeling/tune.py): the search space of each algorithm and the budget ----
# A range is [low, high]: whole numbers for counts and sizes, any positive number for C.
IntRange = tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]
FloatRange = tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]]


def ordered(value: tuple) -> tuple:
    if value[0] > value[1]:
        raise ValueError(f"a range is [low, high] with low <= high (got {list(value)})")
    return value


class ForestSpace(Section):
    n_estimators: IntRange
    max_depth: IntRange

    _ordered = field_validator("n_estimators", "max_depth")(ordered)


class LogisticSpace(Section):
    C: FloatRange

    _ordered = field_validator("C")(ordered)


class MlpSpace(Section):
    hidden_units: IntRange  # one hidden layer of this many units (train.hidden_layers)

    _ordered = field_validator("hidden_units")(ordered)


class SearchSpace(Section):
    """The algorithms a trial chooses among (those present) and the range of each parameter."""

    random_forest: ForestSpace | None = None
    logistic_regression: LogisticSpace | None = None
    mlp: MlpSpace | None = None

    @model_validator(mode="after")
    def some_algorithm(self) -> SearchSpace:
        if not self.algorithms():
            raise ValueError(
                "tune.space names no algorithm: random_forest, logistic_regression, mlp"
            )
        return self

    def algorithms(self) -> list[str]:
        return [name for name in type(self).model_fields if getattr(self, name) is not None]


class TuneParams(Section):
    trials: int = Field(ge=1, le=10_000)  # trials each `make tune` adds to the study
    timeout_seconds: float = Field(gt=0)  # no new trial starts after this
    seed: int
    metric: Metric  # scored on a validation split carved from the training split
    validation_size: float = Field(gt=0, lt=1)
    study: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # the same name resumes
    cluster: str  # none (this process), local (a Dask LocalCluster) or tcp://host:port
    workers: int = Field(ge=1, le=64)  # local: how many Dask worker processes
    space: SearchSpace

    @field_validator("cluster")
    @classmethod
    def known_cluster(cls, value: str) -> str:
        if value in ("none", "local") or re.fullmatch(r"tcp://[A-Za-z0-9.\-]+:\d{1,5}", value):
            return value
        raise ValueError(f"none, local or a scheduler's tcp://host:port (got {value!r})")


# ---- end make tune ----


class EnergyParams(Section):
    country_iso_code: str = Field(pattern=r"^[A-Z]{3}$")  # ISO 3166-1 alpha-3


class MlflowParams(Section):
    experiment: str = Field(min_length=1)
    registered_model: str = Field(min_length=1)


# The drift job's tests for numerical features, by their names in the drift library (M6).
DriftMethod = Literal[
    "ks", "wasserstein", "psi", "jensenshannon", "kl_div", "anderson", "cramer_von_mises",
    "mannw", "ed", "es", "t_test", "hellinger", "empirical_mmd",
]  # fmt: skip


class ImagesParams(Section):
    """How the model reads an image column: resized to width x height, in grey (L) or colour."""

    width: int = Field(ge=1, le=1024)
    height: int = Field(ge=1, le=1024)
    mode: Literal["L", "RGB"]


class ExplainParams(Section):
    """The `explain` stage's bounded sample: rows explained, SHAP's background rows, the seed."""

    samples: int = Field(ge=1, le=5000)
    background: int = Field(ge=1, le=1000)
    seed: int


class DriftParams(Section):
    window: int = Field(ge=1)
    min_rows: int = Field(ge=2)
    method: DriftMethod | None
    threshold: float | None = Field(gt=0)
    drift_share: float = Field(gt=0, le=1)


class Params(Section):
    data: DataParams
    features: FeaturesParams
    train: TrainParams
    gate: GateParams
    energy: EnergyParams
    mlflow: MlflowParams
    explain: ExplainParams
    drift: DriftParams | None = None  # in params.yaml when the project has monitoring (M6)
    images: ImagesParams | None = None  # in params.yaml when the data is pictures
    tune: TuneParams

    @model_validator(mode="after")
    def gate_fits_the_target(self) -> Params:
        named = [*self.gate.minimum, self.gate.compare_on]
        needs_positive = sorted({metric for metric in named if metric in POSITIVE_METRICS})
        if needs_positive and self.data.positive_label is None:
            raise ValueError(
                f"the gate uses {', '.join(needs_positive)}, which need data.positive_label (the "
                "positive class of a binary target)"
            )
        if self.tune.metric in POSITIVE_METRICS and self.data.positive_label is None:
            raise ValueError(f"tune.metric {self.tune.metric} needs data.positive_label")
        if self.data.target in self.data.columns:
            raise ValueError(f"data.columns lists the target {self.data.target!r}: remove it")
        if self.data.source == "folder" and (self.images is None or not self.data.folder):
            raise ValueError(
                "data.source folder reads pictures: set data.folder and an `images:` section"
            )
        if self.train.model == "onnx" and (self.images is None or not self.train.onnx_file):
            raise ValueError("train.model onnx reads pictures: set train.onnx_file and `images:`")
        images = [name for name, kind in self.data.columns.items() if kind == "image"]
        if images and self.images is None:
            raise ValueError(f"data.columns has the image column {images[0]!r}: add `images:`")
        others = [n for n, kind in self.data.columns.items() if kind not in ("image", "ignore")]
        if len(images) > 1 or (images and others):
            raise ValueError(
                "an image model reads one image column: mark the others ignore in data.columns"
            )
        return self


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read and check params.yaml; ParamsError names the first broken key and its rule."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ParamsError(f"cannot read {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        raise ParamsError(f"{path.name} is not valid YAML{line}: {error}") from None
    try:
        return Params.model_validate(document)
    except ValidationError as error:
        raise ParamsError(f"{path.name}: {describe(error)}") from None


def describe(error: ValidationError) -> str:
    """The first problem as `section.key: rule (got value)`; an unknown key first, since a
    misspelt key also shows as the right one missing."""
    problems = error.errors()
    problem = next((p for p in problems if p["type"] == "extra_forbidden"), problems[0])
    location = [str(part) for part in problem["loc"]]
    key = ".".join(location) or "(top level)"
    if problem["type"] == "extra_forbidden":
        section: Any = Params
        for part in location[:-1]:
            annotation = section.model_fields[part].annotation
            section = (get_args(annotation) or [annotation])[0]  # `Section | None` is Section
        known = list(section.model_fields)
        close = difflib.get_close_matches(location[-1], known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)}"
        return f"{key}: unknown key ({hint})"
    if problem["type"] == "missing":
        return f"{key}: missing"
    if problem["type"] == "value_error":  # a rule of ours: its message says it all
        message = problem["msg"].removeprefix("Value error, ")
        return f"{key}: {message}" if location else message
    return f"{key}: {problem['msg']} (got {problem['input']!r})"
