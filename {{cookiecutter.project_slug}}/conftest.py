"""Fixtures shared by the test folders: tests/ (the project's) and course/ (the milestones')."""

from __future__ import annotations

from pathlib import Path

import pytest
from scratch import commit, run
from support import scratch_copy


@pytest.fixture(scope="session")
def finished_pipeline(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A scratch copy of the project, committed, after one whole `dvc repro`, committed too; and
    the environment to run in it. The run takes a minute or more, so the slow tests that need a
    finished pipeline (tests/test_pipeline.py, course/test_milestones.py) share it: each may
    change it but must leave it a finished pipeline."""
    root = tmp_path_factory.mktemp("pipeline") / "project"
    env = scratch_copy(root)
    commit(root, env, "scratch copy")
    run(["dvc", "repro"], root, env)
    commit(root, env, "first pipeline run")
    return root, env
