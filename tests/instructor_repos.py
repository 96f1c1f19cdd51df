"""Team repositories for the instructor command's tests, and how the tests drive the command.

`course` (a session fixture, registered in conftest.py) renders a committed snapshot of the
template into three fresh team repositories; each test copies the ones it changes
(`copy_team`). The command runs in-process (`cli`).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import OPTION_SETS, path_without_dvc, render, run, template_snapshot
from mlops_template.cli import main

IDENTITY = ["-c", "user.name=Ann Lee", "-c", "user.email=Ann@Example.edu"]


@pytest.fixture(scope="session")
def course(tmp_path_factory):
    """A committed template snapshot and three fresh team repositories rendered from it.

    team-a and team-c take the default answers, team-b another option set (another reference).
    """
    root = tmp_path_factory.mktemp("course")
    template = template_snapshot(root / "template" / "mlops-template")
    answers = {"team-a": "default", "team-b": "cycle-2", "team-c": "default"}
    (root / "teams").mkdir()
    teams = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", path_without_dvc())
        for name, set_id in answers.items():
            project = render(root / "renders" / name, OPTION_SETS[set_id], template)
            teams[name] = project.rename(root / "teams" / name)
    return SimpleNamespace(template=template, teams=teams, cache=root / "cache")


def copy_team(course, name: str, destination: Path) -> Path:
    """A copy of a fresh team repository that a test may change."""
    return Path(shutil.copytree(course.teams[name], destination / name, symlinks=True))


def cli(course, capsys, *args: str, cache: Path | None = None) -> tuple[int, str, str]:
    """Run the command in-process (with the session's cache, or `cache`): status, stdout, stderr."""
    status = main([*args, "--cache", str(cache or course.cache)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def commit_all(repository: Path, message: str, identity: list[str] = IDENTITY) -> None:
    run(["git", "add", "--all"], cwd=repository)
    run(["git", *identity, "commit", "--quiet", "--no-verify", "-m", message], cwd=repository)
