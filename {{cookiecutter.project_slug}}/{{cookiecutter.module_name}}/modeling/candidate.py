"""models/candidate/: the model `train` fitted and run.json, which `evaluate` and `export` read."""

from __future__ import annotations

from pathlib import Path

import joblib
from pydantic import BaseModel, ValidationError
from sklearn.pipeline import Pipeline

from ..bundle import Feature
from ..errors import PipelineError

MODEL_FILE = "model.joblib"
RUN_FILE = "run.json"


class CandidateError(PipelineError):
    """The candidate folder is missing or unreadable."""


class CandidateRun(BaseModel):
    """run.json: the MLflow run, data and commit of the candidate, and the features it takes."""

    run_id: str
    experiment_id: str
    model_uri: str
    data_sha256: str
    git_commit: str
    trained_at: str
    features: list[Feature]


def write_candidate(folder: Path, model: Pipeline, run: CandidateRun) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / MODEL_FILE)
    (folder / RUN_FILE).write_text(run.model_dump_json(indent=2) + "\n", encoding="utf-8")


def read_candidate(folder: Path) -> tuple[Pipeline, CandidateRun]:
    try:
        run = CandidateRun.model_validate_json((folder / RUN_FILE).read_text(encoding="utf-8"))
        model = joblib.load(folder / MODEL_FILE)
    except FileNotFoundError as error:
        raise CandidateError(f"{error.filename} is missing: run `train` first") from None
    except (OSError, ValidationError, ValueError) as error:
        raise CandidateError(f"cannot read the candidate in {folder}: {error}") from None
    return model, run
