"""Every path and setting location of the project, in one place.

Other modules import these constants instead of building paths by hand, so moving a folder is a
one-line change here. Paths are absolute, derived from this file's location, so code works from
any working directory (the pipeline, the tests, a notebook).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from dotenv import load_dotenv

PROJ_ROOT = Path(__file__).resolve().parents[1]

# Settings from a local .env (never committed) override nothing already set in the environment.
load_dotenv(PROJ_ROOT / ".env", override=False)
PARAMS_FILE = PROJ_ROOT / "params.yaml"

DATA_DIR = PROJ_ROOT / "data"
RAW_DATA_DIR = DATA_DIR / "raw"
INTERIM_DATA_DIR = DATA_DIR / "interim"
PROCESSED_DATA_DIR = DATA_DIR / "processed"
EXTERNAL_DATA_DIR = DATA_DIR / "external"
RAW_DATASET = RAW_DATA_DIR / "dataset.csv"
RAW_METADATA = RAW_DATA_DIR / "dataset.json"
TRAIN_FILE = PROCESSED_DATA_DIR / "train.csv"
TEST_FILE = PROCESSED_DATA_DIR / "test.csv"

EXPECTATIONS_DIR = PROJ_ROOT / "expectations"
EXPECTATION_SUITE = EXPECTATIONS_DIR / "raw_data.json"

MODELS_DIR = PROJ_ROOT / "models"
CANDIDATE_DIR = MODELS_DIR / "candidate"
BUNDLE_DIR = MODELS_DIR / "bundle"

REPORTS_DIR = PROJ_ROOT / "reports"
FIGURES_DIR = REPORTS_DIR / "figures"
PLOTS_DIR = REPORTS_DIR / "plots"
VALIDATION_DIR = REPORTS_DIR / "validation"
METRICS_FILE = REPORTS_DIR / "metrics.json"
GATE_FILE = REPORTS_DIR / "gate.json"
EMISSIONS_FILE = REPORTS_DIR / "emissions.csv"

NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"
REFERENCES_DIR = PROJ_ROOT / "references"
DOCS_DIR = PROJ_ROOT / "docs"

# MLflow: an SQLite file in the project unless MLFLOW_TRACKING_URI points elsewhere.
MLFLOW_DB = PROJ_ROOT / "mlflow.db"
DEFAULT_MLFLOW_TRACKING_URI = f"sqlite:///{MLFLOW_DB}"


def mlflow_tracking_uri() -> str:
    """Return the tracking URI: the MLFLOW_TRACKING_URI variable, else the local SQLite file."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_MLFLOW_TRACKING_URI


def load_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    """Read params.yaml, the single home of every tunable of the pipeline."""
    with path.open(encoding="utf-8") as handle:
        params = yaml.safe_load(handle)
    if not isinstance(params, dict):
        raise ValueError(f"{path} must hold a mapping of sections, got {type(params).__name__}")
    return params
