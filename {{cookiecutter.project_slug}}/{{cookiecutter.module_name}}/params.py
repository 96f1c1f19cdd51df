"""params.yaml as typed settings: read once, checked once, then passed to each stage by section.

Each section is a pydantic model, so a stage reads `params.train.n_estimators` (an int) instead of
`params["train"]["n_estimators"]` (anything). Values are coerced where YAML is ambiguous: PyYAML
reads `1e-06`, which `dvc exp run -S train.C=1e-6` writes, as a string, and the model makes it the
float it means. A bad value or an unknown key stops the stage with one line naming the key and the
rule. To add a parameter: add it to params.yaml and to its section here, with its rule.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config import PARAMS_FILE
from .errors import PipelineError

# The metrics the gate can compare candidates on (evaluate and promote compute all of them).
Metric = Literal["accuracy", "precision", "recall", "f1", "roc_auc"]


class ParamsError(PipelineError):
    """params.yaml cannot be read or breaks a rule."""


class Section(BaseModel):
    # A misspelt key is an error, never a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class DataParams(Section):
    source: Literal["builtin", "csv"] = Field(
        description="builtin: scikit-learn's breast-cancer data; csv: the file or URL in `csv`"
    )
    csv: str = ""
    target: str = Field(min_length=1, description="The label column")
    positive_label: str = Field(min_length=1, description="The class metrics call positive")


class FeaturesParams(Section):
    test_size: float = Field(gt=0, lt=1)
    random_state: int


class TrainParams(Section):
    model: Literal["random_forest", "logistic_regression"]
    n_estimators: int = Field(ge=1)
    max_depth: int | None = Field(ge=1)
    C: float = Field(gt=0)
    random_state: int


class GateParams(Section):
    min_accuracy: float = Field(ge=0, le=1)
    min_f1: float = Field(ge=0, le=1)
    min_roc_auc: float = Field(ge=0, le=1)
    compare_on: Metric


class EnergyParams(Section):
    country_iso_code: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 3166-1 alpha-3")


class MlflowParams(Section):
    experiment: str = Field(min_length=1)
    registered_model: str = Field(min_length=1)


# The drift job's tests for numerical features, by their names in the drift library (M6).
DriftMethod = Literal[
    "ks", "wasserstein", "psi", "jensenshannon", "kl_div", "anderson", "cramer_von_mises",
    "mannw", "ed", "es", "t_test", "hellinger", "empirical_mmd",
]  # fmt: skip


class DriftParams(Section):
    window: int = Field(ge=1, description="Most recent logged predictions to compare")
    min_rows: int = Field(ge=2, description="Fewest logged predictions worth a verdict")
    method: DriftMethod | None = Field(description="The drift test; null: chosen by data size")
    threshold: float | None = Field(gt=0, description="The test's threshold; null: its default")
    drift_share: float = Field(gt=0, le=1, description="Share of drifted features that is drift")


class Params(Section):
    data: DataParams
    features: FeaturesParams
    train: TrainParams
    gate: GateParams
    energy: EnergyParams
    mlflow: MlflowParams
    drift: DriftParams | None = None  # in params.yaml when the project has monitoring (M6)


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
    """The first problem of a validation error as `section.key: rule (got value)`; an unknown
    key comes first, since a misspelt key also shows as the right one missing."""
    problems = error.errors()
    problem = next((p for p in problems if p["type"] == "extra_forbidden"), problems[0])
    location = [str(part) for part in problem["loc"]]
    key = ".".join(location) or "(top level)"
    if problem["type"] == "extra_forbidden":
        section: type[BaseModel] = Params
        for part in location[:-1]:
            section = section.model_fields[part].annotation  # type: ignore[assignment]
        known = list(section.model_fields)
        close = difflib.get_close_matches(location[-1], known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)}"
        return f"{key}: unknown key ({hint})"
    if problem["type"] == "missing":
        return f"{key}: missing"
    return f"{key}: {problem['msg']} (got {problem['input']!r})"
