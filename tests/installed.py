"""What every installed render must show, for the slow tests that install one."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import yaml

from conftest import run
from project_shell import skipped_lines

PIPELINE_ONLY = ("mlflow", "scikit-learn", "pandas", "great-expectations", "evidently", "dvc")
PIPELINE_ONLY += ("shap", "numba")  # the tabular `explain` stage's
# DVC writes its config with configobj, which quotes the section name.
REMOTE_SECTION = "'remote \"storage\"'"
REMOTE_URLS = {
    "local": "../dvc-remote",
    "s3": "s3://mlops-course-dvc/",
    "gcs": "gs://mlops-course-dvc/",
    "azure": "azure://mlops-course-dvc/",
}


def dvc_config(project: Path) -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(project / ".dvc" / "config")
    return config


def check_installed_project(
    project: Path, answers: dict, env: dict[str, str], fast_tests: bool = True
) -> None:
    """What every installed render must show: its Python, one uv, DVC set up, lint and fast
    tests green (`fast_tests=False` where the caller runs the full `make test` anyway), its
    docs, and a serving group without the pipeline stack."""
    version = run([".venv/bin/python", "-c", "import sys; print(sys.version[:4])"], project).stdout
    assert version.strip() == answers["python_version"]
    assert (project / ".venv" / "bin" / "uv").is_file(), "uv belongs in the project's dev group"

    config = dvc_config(project)
    assert config["core"]["analytics"] == "false"
    assert config["core"]["autostage"] == "true"  # DVC stages dvc.lock instead of saying how to
    assert config["core"]["remote"] == "storage"
    assert config[REMOTE_SECTION]["url"].startswith(REMOTE_URLS[answers["dvc_remote"]])

    run(["make", "lint"], cwd=project, env=env)
    if fast_tests:
        tested = run(["make", "test-fast"], cwd=project, env=env).stdout
        assert " passed" in tested and "failed" not in tested, tested
        # Only tests of numbers skip, on the text and image tasks' data, which have none.
        skipped = skipped_lines(tested)
        assert all("numeric" in line for line in skipped), skipped
        assert bool(skipped) == (answers["task"] != "tabular"), tested[-3000:]
    if answers["use_docs_site"]:
        run(["make", "docs"], cwd=project, env=env)
        assert (project / "site" / "index.html").is_file()

    if answers["use_api"]:  # the serving group must not pull the pipeline stack in
        serving_group = run(
            [".venv/bin/uv", "export", "--frozen", "--no-hashes", "--no-default-groups",
             "--group", "serve"],
            cwd=project,
            env=env,
        ).stdout.lower()  # fmt: skip
        assert "onnxruntime==" in serving_group and "fastapi==" in serving_group
        for package in PIPELINE_ONLY:
            assert f"\n{package}==" not in serving_group, f"serving would install {package}"


def check_pipeline_ran(project: Path, experiment: bool = False) -> None:
    """The pipeline's outputs after `make pipeline` or (`experiment`) a `dvc exp run`."""
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    gate = yaml.safe_load((project / "params.yaml").read_text())["gate"]["minimum"]
    assert metrics["f1_macro"] >= gate["f1_macro"]  # the task's own gate
    promotion = json.loads((project / "reports" / "promotion.json").read_text())
    # An experiment promotes nothing; before the first model it still fills models/bundle.
    assert promotion["promoted"] is not experiment
    assert (promotion["experiment"] is not None) is experiment
    assert (project / "models" / "bundle" / "model.onnx").is_file()
    assert (project / "reports" / "validation" / "data_docs" / "index.html").is_file()
    explained = json.loads((project / "reports" / "explanations" / "explanations.json").read_text())
    assert explained["run_id"] == promotion["candidate"]["run_id"] and explained["values"]
    assert (project / "reports" / "explanations" / "explanations.png").stat().st_size > 1000
