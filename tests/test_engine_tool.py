"""Fast tier, tools/docker_engine.py without an engine: what it does at start with containers
that an unfinished run left behind (the slow tier runs the engine for real)."""

from __future__ import annotations

import subprocess

import pytest
from docker_fixtures import engine_tool


class FakeCli:
    """Stands for the docker CLI: `ps` lists `containers`, every call is recorded."""

    def __init__(self, containers: list[str]) -> None:
        self.containers, self.calls = containers, []

    def __call__(self, _state, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        self.calls.append(args)
        listing = "\n".join(self.containers) if args[0] == "ps" else ""
        return subprocess.CompletedProcess(args, 0, listing, "")


@pytest.mark.parametrize("containers", [["3f1a", "9c2e"], []], ids=["left-over", "none"])
def test_a_fresh_engine_removes_the_containers_an_unfinished_run_left(
    monkeypatch, capsys, tmp_path, containers
):
    """Compose's restart policies bring a killed run's stack back with the next dockerd: all
    of them go, with their anonymous volumes, and the start says how many."""
    cli = FakeCli(containers)
    monkeypatch.setattr(engine_tool, "docker", cli)
    engine_tool.remove_leftover_containers(engine_tool.State(tmp_path))
    removals = [call for call in cli.calls if call[0] == "rm"]
    if containers:
        assert removals == [("rm", "--force", "--volumes", *containers)]
        assert "removed 2 container(s) left by an unfinished run" in capsys.readouterr().err
    else:
        assert removals == [] and capsys.readouterr().err == ""
    assert cli.calls[0] == ("ps", "--all", "--quiet")
