"""What the benchmarks need to run the project apart from itself: a scratch copy.

Support, not a benchmark: benchmarks/pipeline.py and the slow tests (the root conftest.py) import
it by name; pytest finds it through `pythonpath` in pyproject.toml, a benchmark because it sits
next to it.

The copy holds the project's source files (what git tracks or would track), the data files that
DVC tracks for them (a team's own table, `dvc add`ed under data/external/), a fresh git and DVC
repository and its own MLflow store, so running the pipeline there never touches the real data,
models, runs or champion alias.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from {{ cookiecutter.module_name }}.config import PROJ_ROOT


def scratch_copy(destination: Path) -> dict[str, str]:
    """Copy the project's source files into `destination`; return the environment to run in.

    The environment puts this interpreter's folder (the project's .venv) first on PATH, so `dvc`
    and the stages' `python` are the project's, and points MLflow at `destination/mlflow.db`.
    """
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    tracked_by_dvc = [name.removesuffix(".dvc") for name in listed if name.endswith(".dvc")]
    for name in [*listed, *tracked_by_dvc]:
        source = PROJ_ROOT / name
        if source.is_file() and not name.startswith(".dvc/"):
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{destination / 'mlflow.db'}"
    for command in (
        ["git", "init", "--quiet"],
        ["dvc", "init", "--quiet"],
        ["dvc", "config", "core.analytics", "false"],
    ):
        subprocess.run(command, cwd=destination, env=env, check=True, capture_output=True)
    return env
