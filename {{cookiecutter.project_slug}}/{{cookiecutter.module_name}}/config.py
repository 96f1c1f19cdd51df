"""Every path, shared name and tool default of the project, in one place.

Paths are absolute, derived from this file, so code works from any working directory. Importing
this module (the package's `__init__` does it first) loads `.env`, then gives each setting in
TOOL_DEFAULTS its default unless the environment or `.env` already sets it.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv

PROJ_ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = PROJ_ROOT / ".env"
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
# `train` writes the candidate, `export` its ONNX bundle, `promote` installs the winner as the
# served bundle; `make fetch-model` downloads a registered one.
CANDIDATE_DIR = MODELS_DIR / "candidate"
CANDIDATE_BUNDLE_DIR = MODELS_DIR / "candidate_bundle"
BUNDLE_DIR = MODELS_DIR / "bundle"
FETCHED_BUNDLE_DIR = MODELS_DIR / "fetched"

REPORTS_DIR = PROJ_ROOT / "reports"
FIGURES_DIR = REPORTS_DIR / "figures"
PLOTS_DIR = REPORTS_DIR / "plots"
EXPLANATIONS_DIR = REPORTS_DIR / "explanations"
VALIDATION_DIR = REPORTS_DIR / "validation"
METRICS_FILE = REPORTS_DIR / "metrics.json"
PROMOTION_FILE = REPORTS_DIR / "promotion.json"
EMISSIONS_FILE = REPORTS_DIR / "emissions.csv"
# `make tune`: the Optuna study (git-ignored), the best trial's parameters and how to apply them.
TUNING_DIR = REPORTS_DIR / "tuning"
STUDY_DB = TUNING_DIR / "optuna.db"
BEST_PARAMS_FILE = TUNING_DIR / "best_params.yaml"
APPLY_FILE = TUNING_DIR / "apply.sh"
# Monitoring (M6): the service's prediction log; the drift job's reports and its drift.json.
PREDICTION_LOG = DATA_DIR / "monitoring" / "predictions.sqlite"
GROUND_TRUTH_FILE = DATA_DIR / "monitoring" / "ground_truth.csv"
DRIFT_DIR = REPORTS_DIR / "drift"
DRIFT_SUMMARY = DRIFT_DIR / "drift.json"

NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"
REFERENCES_DIR = PROJ_ROOT / "references"
DOCS_DIR = PROJ_ROOT / "docs"
MODEL_CARD = DOCS_DIR / "model-card.md"
DATASET_CARD = DOCS_DIR / "dataset-card.md"

# MLflow: an SQLite file in the project unless MLFLOW_TRACKING_URI points elsewhere.
MLFLOW_DB = PROJ_ROOT / "mlflow.db"
DEFAULT_MLFLOW_TRACKING_URI = f"sqlite:///{MLFLOW_DB}"
# The registry alias of the served model, which always names the model in BUNDLE_DIR.
CHAMPION_ALIAS = "champion"
# Where a run keeps its scikit-learn model and its ONNX bundle among its artifacts.
MODEL_ARTIFACT = "model"
BUNDLE_ARTIFACT = "bundle"
# Test-split metrics are logged to a run under this prefix, next to its `train_*` metrics.
TEST_METRIC_PREFIX = "test_"
# Set by `dvc exp run` for the stages of an experiment: experiments never move the champion.
EXPERIMENT_VARIABLE = "DVC_EXP_NAME"

# Tool settings the project chooses: telemetry off, no progress bars, CodeCarbon's errors only.
TOOL_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "CODECARBON_LOG_LEVEL": "error",
}

load_dotenv(ENV_FILE, override=False)  # never overrides the real environment
for _name, _value in TOOL_DEFAULTS.items():
    os.environ.setdefault(_name, _value)


def mlflow_tracking_uri() -> str:
    """The MLFLOW_TRACKING_URI variable, else the local SQLite file."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_MLFLOW_TRACKING_URI


def running_experiment() -> str | None:
    """The name of the `dvc exp run` experiment this process belongs to, None outside one."""
    return os.environ.get(EXPERIMENT_VARIABLE) or None


def display_path(path: Path) -> str:
    """A path relative to the project when it is inside it, for messages and reports."""
    resolved = path.resolve()
    return str(resolved.relative_to(PROJ_ROOT)) if resolved.is_relative_to(PROJ_ROOT) else str(path)
