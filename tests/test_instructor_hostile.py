"""The instructor command on hostile team repositories: one per attack seen, next to honest ones.

Each attack copies a fresh render and changes it as a student trying things would: template
syntax in an answer, a `.cruft.json` naming another template or folder, a `.git/config` naming
commands, a `.env` pointing at a server, links to `/dev/zero` and out of the repository, a
200 MB file, damaged files, a clone that never answers, text made to run in a spreadsheet or
recolour a terminal. Every subcommand runs over all of them with the honest teams. Whatever ran
would write a marker file, and the server counts its connections: none may appear. Every table
is written, each hostile row says why in one line, and the honest rows are as on their own.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from instructor_repos import cli, commit_all, copy_team, rows

from conftest import run

HONEST = ["team-a", "team-b", "team-c"]
# Seconds a repository may take (--timeout): the hung clone must fail within it.
TIMEOUT = "5"
# Bounds of a whole run over every repository here, far above what it takes: a hang, not speed.
RUN_SECONDS = 240
MEMORY_BYTES = 1024**3


class Listener:
    """A loopback server that accepts connections, counts them and never answers."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self.serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.accepted.append(connection)  # kept open, never answered

    def close(self) -> None:
        self.socket.close()
        for connection in self.accepted:
            connection.close()


def edit_record(team: Path, change) -> None:
    record = json.loads((team / ".cruft.json").read_text())
    change(record)
    (team / ".cruft.json").write_text(json.dumps(record))


def evil_template(course, root: Path, marker: Path) -> Path:
    """A copy of the template whose post-generation hook writes `marker` first."""
    template = Path(shutil.copytree(course.template, root / "evil-template", symlinks=True))
    hook = template / "hooks" / "post_gen_project.py"
    hook.write_text(f"open({str(marker)!r}, 'w').close()\n" + hook.read_text())
    commit_all(template, "evil hook")
    return template


def hostile_repositories(
    course, root: Path, markers: Path, server: Listener, hung: Listener
) -> dict[str, str]:
    """Each attack's repository (a path, or a URL), by name."""
    attacks: dict[str, str] = {}

    def team(name: str) -> Path:
        """A copy of a fresh render in a folder named after the attack (its row's name)."""
        return copy_team(course, "team-a", root / name).rename(root / name / name)

    # 1. Template syntax in an answer: cookiecutter would run it.
    jinja = team("jinja-answer")
    command = f"touch {markers / 'jinja'}"
    payload = "{{ cycler.__init__.__globals__.os.system(" + repr(command) + ") }}"
    edit_record(jinja, lambda r: r["context"]["cookiecutter"].update(description=payload))
    commit_all(jinja, "answers")
    attacks["jinja-answer"] = str(jinja)

    # 2-3. .cruft.json naming another template, and a folder of the team's own clone.
    elsewhere = team("template-field")
    evil = evil_template(course, root, markers / "template")
    shutil.copytree(evil, elsewhere / "own-template", symlinks=True)
    edit_record(elsewhere, lambda r: r.update(template=str(evil), directory="own-template"))
    commit_all(elsewhere, "template")
    attacks["template-field"] = str(elsewhere)

    # 5. A .git/config naming commands git could run while reading the repository.
    configured = team("git-config")
    hooks = root / "hooks"
    hooks.mkdir()
    for hook in ("post-checkout", "reference-transaction", "post-index-change", "pre-commit"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {markers / ('hook-' + hook)}\n")
        (hooks / hook).chmod(0o755)
    (configured / ".gitattributes").write_text("* filter=evil diff=evil\n")
    commit_all(configured, "attributes")
    for key, value in {
        "core.fsmonitor": f"touch {markers / 'fsmonitor'}; false",
        "core.pager": f"touch {markers / 'pager'}; cat",
        "core.sshCommand": f"touch {markers / 'ssh'}; ssh",
        "core.hooksPath": str(hooks),
        "filter.evil.clean": f"touch {markers / 'clean'}; cat",
        "filter.evil.smudge": f"touch {markers / 'smudge'}; cat",
        "diff.evil.textconv": f"touch {markers / 'textconv'}; cat",
        "diff.external": f"touch {markers / 'external'}; false",
    }.items():
        run(["git", "config", key, value], cwd=configured)
    (configured / "README.md").write_text("changed after the commit: filters would run\n")
    attacks["git-config"] = str(configured)

    # 6. A committed .env pointing MLflow at a server the team chose.
    dotenv = team("dotenv")
    (dotenv / ".env").write_text(f"MLFLOW_TRACKING_URI={server.url}\n")
    run(["git", "add", "--force", ".env"], cwd=dotenv)
    commit_all(dotenv, "our server")
    attacks["dotenv"] = str(dotenv)

    # 7. Links to an endless device and out of the repository.
    links = team("symlinks")
    (links / "dvc.yaml").unlink()
    (links / "dvc.yaml").symlink_to("/dev/zero")
    (root / "outside-secret.md").write_text("the instructor's private notes\n" * 50)
    (links / "docs" / "leak.md").symlink_to(root / "outside-secret.md")
    commit_all(links, "links")
    attacks["symlinks"] = str(links)

    # 8. A 200 MB text file (not committed: git would take longer than the test to store it).
    huge = team("huge")
    with (huge / "docs" / "huge.md").open("w") as handle:
        for _ in range(200):
            handle.write("lorem ipsum dolor sit amet " * 38_836)  # about 1 MB a write
    attacks["huge"] = str(huge)

    # 10. Damaged files: a dvc.yaml of the wrong shape, a notebook with integer sources.
    damaged = team("damaged")
    (damaged / "dvc.yaml").write_text("stages:\n  train:\n    outs: 5\n    cmd: [1, 2]\n")
    notebook = {"cells": [{"cell_type": "code", "source": 12345}, {"cell_type": 7}]}
    (damaged / "notebooks" / "broken.ipynb").write_text(json.dumps(notebook))
    commit_all(damaged, "damaged")
    attacks["damaged"] = str(damaged)

    # 10. A .cruft.json nested too deeply to parse.
    nested = team("nested-record")
    depth = 40_000  # under the size limit of a .cruft.json, far over what a parser can nest
    (nested / ".cruft.json").write_text(
        '{"context": {"cookiecutter": ' + "[" * depth + "]" * depth + "}}"
    )
    commit_all(nested, "nested")
    attacks["nested-record"] = str(nested)

    # 9. A clone from a server that accepts and never answers.
    attacks["hung-clone"] = f"{hung.url}/hung-clone.git"

    # 11. Text made for a spreadsheet, and for a terminal.
    formula = team("formula")
    (formula / "=HYPERLINK(1).md").write_text("a file name that is a formula\n")
    commit_all(
        formula,
        "=cmd|' /C calc'!A0",
        ["-c", 'user.name==HYPERLINK("http://example.org")', "-c", "user.email=f@e.org"],
    )
    (formula / "docs" / "notes.md").write_text("notes\n")
    commit_all(formula, "colours",
               ["-c", "user.name=\x1b[31mRED\x1b[0m", "-c", "user.email=r@e.org"])  # fmt: skip
    attacks["formula"] = str(formula)
    return attacks


@pytest.fixture(scope="module")
def hostile(course, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    markers = root / "markers"
    markers.mkdir()
    server, hung = Listener(), Listener()
    honest = {name: str(copy_team(course, name, root / "honest")) for name in HONEST}
    attacks = hostile_repositories(course, root / "attacks", markers, server, hung)
    listing = root / "teams.txt"
    listing.write_text(
        "# the course's repositories\n"
        + "".join(f"{path}\n" for path in honest.values())
        + f"--template={attacks['template-field']}/own-template\n"
    )
    yield SimpleNamespace(
        root=root, markers=markers, server=server, honest=honest, attacks=attacks, listing=listing
    )
    server.close()
    hung.close()


COMMANDS = {
    "check": ["--template", "{template}"],
    "diff": ["--template", "{template}"],
    "similar": ["--template", "{template}"],
    "activity": [],
}


def run_command(course, capsys, hostile, command: str, repos: list[str], output: Path):
    options = [option.format(template=course.template) for option in COMMANDS[command]]
    started = time.monotonic()
    status, out, err = cli(course, capsys, command, *repos, *options, "--timeout", TIMEOUT,
                           "-o", str(output))  # fmt: skip
    return status, out, err, time.monotonic() - started


@pytest.mark.parametrize("command", list(COMMANDS))
def test_nothing_of_a_hostile_repository_runs_and_the_honest_rows_stand(
    course, capsys, hostile, tmp_path, command
):
    honest = list(hostile.honest.values())
    alone_status, *_ = run_command(course, capsys, hostile, command, honest, tmp_path / "alone")
    assert alone_status == 0
    everyone = [*honest, *hostile.attacks.values(), f"@{hostile.listing}"]
    status, out, err, seconds = run_command(
        course, capsys, hostile, command, everyone, tmp_path / "all"
    )

    assert sorted(path.name for path in hostile.markers.iterdir()) == []  # nothing ran
    assert hostile.server.accepted == []  # the .env's server was never asked
    assert status == 1  # some repositories could not be used, and the run says so
    assert "Traceback" not in err and "\x1b" not in out + err
    assert seconds < RUN_SECONDS
    for table in (tmp_path / "alone").iterdir():
        assert (tmp_path / "all" / table.name).exists(), table.name
    if command != "similar":  # a row per team: the honest ones exactly as on their own
        summary = rows(tmp_path / "all" / f"{command}.csv")
        assert [r for r in summary if r["team"] in HONEST] == rows(
            tmp_path / "alone" / f"{command}.csv"
        )
    errors = [line for line in err.splitlines() if line.startswith("error:")]

    def reason(name: str) -> str:
        [line] = [line for line in errors if line.startswith(f"error: {name}:")]
        return line

    assert "took more than 5 s" in reason("hung-clone")
    assert any("--template=" in line and "is not a folder" in line for line in errors)
    if command != "activity":  # what needs no reference never reads the answers
        assert "answer description holds template syntax" in reason("jinja-answer")
        assert ".cruft.json cannot be read" in reason("nested-record")


# A child that runs the command and reports the peak memory of the command and its own children.
MEASURED = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(done.returncode, peak)
sys.stderr.write(done.stderr)
"""


@pytest.mark.slow
@pytest.mark.parametrize("command", ["diff", "similar"])
def test_thirty_repositories_stay_under_a_gigabyte(course, hostile, tmp_path, command):
    """Every hostile repository and enough honest teams, each with code of its own, to make 30:
    the command's peak memory (with its git and render children) stays under 1 GB."""
    repos = [*hostile.honest.values(), *hostile.attacks.values()]
    for number in range(30 - len(repos)):
        team = copy_team(course, "team-c", tmp_path / f"extra-{number}")
        module = team / "notebooks" / f"analysis_{number}.py"
        module.write_text("".join(f"def step_{number}_{i}(x):\n    return x * {i}\n" for i in
                                  range(200)))  # fmt: skip
        commit_all(team, "our analysis")
        repos.append(str(team))
    assert len(repos) == 30
    command_line = [str(Path(sys.executable).parent / "mlops-template"), command, *repos,
                    "--template", str(course.template), "--cache", str(course.cache),
                    "--timeout", TIMEOUT, "-o", str(tmp_path / "out")]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, *command_line],
        capture_output=True, text=True, timeout=RUN_SECONDS * 4,
    )  # fmt: skip
    status, peak = map(int, done.stdout.split())
    print(f"{command} over 30 repositories: {time.monotonic() - started:.0f} s, "
          f"peak {peak / 1e6:.0f} MB")  # fmt: skip
    assert status == 1, done.stderr  # the hostile ones are rows with reasons
    assert "Traceback" not in done.stderr
    assert peak < MEMORY_BYTES
    assert (tmp_path / "out" / f"{command}.csv").exists()
