"""Slow tier: each option set's project installs and passes its own checks, as a new team's would.

Every render runs its own `make setup` (uv bootstrapped with pip when missing, then a fresh .venv
from the shared uv cache), `make lint`, `make test`, and `make docs` where the site is on.
"""

from __future__ import annotations

import configparser
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import OPTION_SETS, TEMPLATE_DIR, path_without_dvc, render, run

pytestmark = pytest.mark.slow

PIPELINE_ONLY = ("mlflow", "scikit-learn", "pandas", "great-expectations", "evidently", "dvc")
# DVC writes its config with configobj, which quotes the section name.
REMOTE_SECTION = "'remote \"storage\"'"
REMOTE_URLS = {
    "local": "../dvc-remote",
    "s3": "s3://mlops-course-dvc/",
    "gcs": "gs://mlops-course-dvc/",
    "azure": "azure://mlops-course-dvc/",
}


def python_for(version: str) -> str | None:
    """A working interpreter for `version`: on PATH, else one installed by pyenv."""
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(
        glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}"))
    )
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return None


def user_env(python_version: str) -> dict[str, str]:
    """The environment of a new user: no template venv, no DVC, no uv on PATH."""
    template_bin = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items() if not key.startswith("VIRTUAL_ENV")}
    folders = path_without_dvc().split(os.pathsep)
    env["PATH"] = os.pathsep.join(
        f for f in folders if f != template_bin and not (Path(f) / "uv").exists()
    )
    env["UV_PYTHON_DOWNLOADS"] = "never"
    interpreter = python_for(python_version)
    if interpreter is None:
        pytest.skip(f"Python {python_version} is not installed on this machine")
    env["UV_PYTHON"] = interpreter
    return env


def dvc_config(project: Path) -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(project / ".dvc" / "config")
    return config


@pytest.mark.parametrize("set_id", list(OPTION_SETS))
def test_generated_project_sets_up_lints_and_tests(tmp_path, set_id):
    answers = OPTION_SETS[set_id]
    env = user_env(answers["python_version"])
    project = render(tmp_path, answers)

    run(["make", "setup"], cwd=project, env=env)
    version = run([".venv/bin/python", "-c", "import sys; print(sys.version[:4])"], project).stdout
    assert version.strip() == answers["python_version"]
    assert (project / ".tools" / "bin" / "uv").exists(), "uv should have been bootstrapped"

    config = dvc_config(project)
    assert config["core"]["analytics"] == "false"
    assert config["core"]["remote"] == "storage"
    assert config[REMOTE_SECTION]["url"].startswith(REMOTE_URLS[answers["dvc_remote"]])

    run(["make", "lint"], cwd=project, env=env)
    tested = run(["make", "test"], cwd=project, env=env).stdout
    assert " passed" in tested and "failed" not in tested
    if answers["use_docs_site"]:
        run(["make", "docs"], cwd=project, env=env)
        assert (project / "site" / "index.html").is_file()

    if answers["use_api"]:  # the serving group must not pull the pipeline stack in
        uv = str(project / ".tools" / "bin" / "uv")
        serving = run(
            [uv, "export", "--frozen", "--no-hashes", "--no-default-groups", "--group", "serve"],
            cwd=project,
            env=env,
        ).stdout.lower()
        assert "onnxruntime==" in serving and "fastapi==" in serving
        for package in PIPELINE_ONLY:
            assert f"\n{package}==" not in serving, f"serving would install {package}"


def test_hook_initialises_dvc_when_it_is_on_path(tmp_path, monkeypatch):
    """With DVC available at generation, the initial commit already holds a configured .dvc/."""
    helper = render(tmp_path / "with-dvc-installed", OPTION_SETS["default"])
    env = user_env(OPTION_SETS["default"]["python_version"])
    run(["make", "setup"], cwd=helper, env=env)

    monkeypatch.setenv("PATH", os.pathsep.join([str(helper / ".venv" / "bin"), env["PATH"]]))
    project = render(tmp_path / "rendered", {**OPTION_SETS["default"], "dvc_remote": "s3"})
    tracked = run(["git", "ls-files"], cwd=project).stdout.splitlines()
    assert {".dvc/config", ".dvc/.gitignore", ".dvcignore"} <= set(tracked)
    assert run(["git", "status", "--porcelain"], cwd=project).stdout == ""
    config = dvc_config(project)
    assert config["core"]["analytics"] == "false"
    assert config[REMOTE_SECTION]["url"] == "s3://mlops-course-dvc/breast-cancer-diagnosis"


def test_make_demo_renders_and_runs_the_default_project(tmp_path):
    env = user_env(OPTION_SETS["default"]["python_version"])
    done = run(["make", "demo", f"DEMO_DIR={tmp_path / 'demo'}"], cwd=TEMPLATE_DIR, env=env)
    project = tmp_path / "demo" / "breast-cancer-diagnosis"
    assert f"Demo passed. The project is in {project}" in done.stdout
    assert (project / ".venv" / ".setup-done").exists()
