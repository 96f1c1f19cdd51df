"""The whole pipeline through DVC, in a scratch copy of the project, on a small sample.

Slow: it runs every stage for real (Great Expectations, MLflow, CodeCarbon, ONNX). It checks the
promises of the pipeline: it runs end to end, a re-run with nothing changed does no work, and
corrupt data stops it at `validate` with the served bundle and the champion alias untouched.
"""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from {{ cookiecutter.module_name }}.dataset import builtin_dataset
from {{ cookiecutter.module_name }}.scratch import scratch_copy

pytestmark = pytest.mark.slow
SAMPLE_ROWS = 420


def sh(command: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A scratch copy of the project whose data source is a sample of the default data."""
    root = tmp_path_factory.mktemp("pipeline") / "project"
    env = scratch_copy(root)
    sample = builtin_dataset("diagnosis").sample(SAMPLE_ROWS, random_state=0)
    sample.to_csv(root / "data" / "external" / "sample.csv", index=False)
    set_params(root, source="csv", csv="data/external/sample.csv")
    return root, env


def set_params(root: Path, **data_params) -> None:
    params_path = root / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["data"].update(data_params)
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))


def champion_version(root: Path, env: dict) -> str:
    code = (
        "import mlflow, yaml; p = yaml.safe_load(open('params.yaml'));"
        "c = mlflow.MlflowClient();"
        "print(c.get_model_version_by_alias(p['mlflow']['registered_model'], 'champion').version)"
    )
    return sh([sys.executable, "-c", code], root, env).stdout.strip()


def test_pipeline_runs_end_to_end_then_does_no_work(project):
    root, env = project
    sh(["dvc", "repro"], root, env)
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    assert metrics["f1"] > 0.85
    assert json.loads((root / "reports" / "gate.json").read_text())["promoted"] is True
    metadata = json.loads((root / "models" / "bundle" / "metadata.json").read_text())
    assert (root / "models" / "bundle" / "model.onnx").is_file()
    raw = json.loads((root / "data" / "raw" / "dataset.json").read_text())
    assert raw["rows"] == SAMPLE_ROWS
    assert raw["sha256"] in json.dumps(metadata)
    for figure in ("confusion_matrix", "roc_curve", "precision_recall_curve"):
        assert (root / "reports" / "figures" / f"{figure}.png").stat().st_size > 1000

    again = sh(["dvc", "repro"], root, env).stdout
    assert "Data and pipelines are up to date" in again
    assert "Running stage" not in again


def test_corrupt_data_stops_at_validate_and_keeps_the_served_model(project):
    root, env = project
    bundle = root / "models" / "bundle"
    before, champion = tree_digest(bundle), champion_version(root, env)
    corrupt = pd.read_csv(root / "data" / "external" / "sample.csv")
    corrupt.loc[:5, "mean_radius"] = None
    corrupt.loc[6:8, "diagnosis"] = "unknown"
    corrupt.to_csv(root / "data" / "external" / "corrupt.csv", index=False)
    set_params(root, csv="data/external/corrupt.csv")

    failed = sh(["dvc", "repro"], root, env, check=False)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "validate" in output and "mean_radius" in output and "diagnosis" in output
    assert "Running stage 'features'" not in output
    assert tree_digest(bundle) == before
    assert champion_version(root, env) == champion
    set_params(root, csv="data/external/sample.csv")
