"""The instructor command `mlops-template`: check, diff, similar and activity on team repositories.

Team repositories are rendered from a committed snapshot of the template (so their recorded
template commit exists), then copied and changed by each test as a team would. The command runs
in-process; one test runs the installed console script.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import (
    OPTION_SETS,
    TEMPLATE_DIR,
    path_without_dvc,
    render,
    run,
    template_snapshot,
)
from mlops_template.cli import main

IDENTITY = ["-c", "user.name=Ann Lee", "-c", "user.email=Ann@Example.edu"]
# A module no template holds, written by one team and copied by another (names changed).
OWN_CODE = '''"""Outlier handling for the tabular features."""

from __future__ import annotations

import numpy as np
import pandas as pd


def clip_outliers(frame: pd.DataFrame, columns: list[str], k: float = 1.5) -> pd.DataFrame:
    """Clip each column to [q1 - k * iqr, q3 + k * iqr]."""
    clipped = frame.copy()
    for column in columns:
        q1, q3 = np.percentile(clipped[column], [25, 75])
        spread = q3 - q1
        low, high = q1 - k * spread, q3 + k * spread
        clipped[column] = clipped[column].clip(lower=low, upper=high)
    return clipped


def outlier_share(frame: pd.DataFrame, column: str, k: float = 1.5) -> float:
    """Share of rows outside the whiskers of a box plot."""
    q1, q3 = np.percentile(frame[column], [25, 75])
    spread = q3 - q1
    outside = (frame[column] < q1 - k * spread) | (frame[column] > q3 + k * spread)
    return float(outside.mean())
'''
OTHER_CODE = '''"""Class weights for an imbalanced target."""

from collections import Counter


def balanced_weights(labels):
    counts = Counter(labels)
    total = sum(counts.values())
    return {label: total / (len(counts) * count) for label, count in counts.items()}
'''


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A committed template snapshot and three fresh team repositories rendered from it.

    team-a and team-c take the default answers, team-b another option set (another reference).
    """
    root = tmp_path_factory.mktemp("course")
    template = template_snapshot(root / "template" / "mlops-template")
    answers = {"team-a": "default", "team-b": "cycle-1", "team-c": "default"}
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


def cli(course, capsys, *args: str) -> tuple[int, str, str]:
    """Run the command in-process: exit status, stdout, stderr."""
    status = main([*args, "--cache", str(course.cache)])
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


def test_diff_lists_exactly_what_a_team_deleted_edited_added_and_renamed(course, tmp_path, capsys):
    team = copy_team(course, "team-a", tmp_path)
    module = "breast_cancer_diagnosis"
    deleted = ["docs/coordination.md", "loadtests/locustfile.py"]
    lines_of = {path: str(line_count(team / path)) for path in deleted}
    run(["git", "rm", "--quiet", deleted[0]], cwd=team)
    (team / deleted[1]).unlink()  # deleted, not even committed
    readme = (team / "README.md").read_text().splitlines(keepends=True)
    (team / "README.md").write_text("".join(["# Our project\n", *readme[1:], "Team notes.\n"]))
    features = team / module / "features.py"
    features.rename(team / module / "feature_engineering.py")
    with (team / module / "feature_engineering.py").open("a") as handle:
        handle.write("# Engineered by the team.\n")
    with (team / "dvc.yaml").open("a") as handle:
        handle.write(
            "\n  report:\n    cmd: python -m report\n    outs:\n      - reports/extra.json\n"
        )
    (team / module / "api" / "area.py").write_text(
        "from fastapi import APIRouter\n\nrouter = APIRouter()\n\n\n"
        '@router.get("/area")\ndef area(r: float) -> float:\n    return 3.14159 * r * r\n'
    )
    (team / "tests" / "test_area.py").write_text(
        "def test_area():\n    assert True\n\n\ndef test_radius():\n    assert True\n"
    )
    # Not source: outputs, data, lock files, tools' state.
    for junk in ("reports/extra.json", "reports/metrics.json", "uv.lock", "mlflow.db",
                 ".dvc/config", "data/raw/dataset.csv", f"{module}/__pycache__/x.pyc",
                 ".venv/bin/python", "models/model.pkl"):  # fmt: skip
        (team / junk).parent.mkdir(parents=True, exist_ok=True)
        (team / junk).write_text("generated\n")
    commit_all(team, "Our changes")
    (team / "docs" / "notes.md").write_text("Untracked but not ignored: counted.\n")

    output = tmp_path / "out"
    status, out, err = cli(course, capsys, "diff", str(team), "--template", str(course.template),
                           "-o", str(output))  # fmt: skip
    assert status == 0, err
    assert not [line for line in err.splitlines() if line.startswith(("error", "warning"))]
    files = [
        (r["change"], r["path"], r["reference path"], r["lines +"], r["lines -"], r["similarity"])
        for r in rows(output / "diff-files.csv")
    ]
    assert files == [
        ("missing", deleted[0], "", "0", lines_of[deleted[0]], ""),
        ("missing", deleted[1], "", "0", lines_of[deleted[1]], ""),
        ("modified", "README.md", "", "2", "1", ""),
        ("modified", "dvc.yaml", "", "5", "0", ""),
        ("added", "breast_cancer_diagnosis/api/area.py", "", "8", "0", ""),
        ("added", "docs/notes.md", "", "1", "0", ""),
        ("added", "tests/test_area.py", "", "6", "0", ""),
        ("renamed", f"{module}/feature_engineering.py", f"{module}/features.py", "1", "0", "1"),
    ]
    [summary] = rows(output / "diff.csv")
    assert {k: summary[k] for k in ("missing", "modified", "added", "renamed")} == {
        "missing": "2", "modified": "2", "added": "3", "renamed": "1"
    }  # fmt: skip
    # New lines: non-blank lines of the added files (5 + 1 + 4); then the scored extensions.
    new = (summary["new lines"], summary["new stages"], summary["new tests"])
    assert new == ("10", "report", "2")
    assert summary["new endpoints"] == "GET /area"
    assert float(summary["extension"]) == 10 / 20 + 5 * 1 + 1 * 2 + 3 * 1
    commit = run(["git", "rev-parse", "HEAD"], cwd=course.template).stdout
    assert summary["reference"] == commit[:12]
    assert "| team-a | 2 | 2 | 3 | 1 |" in out
    assert (output / "diff.md").is_file() and "<table>" in (output / "diff.html").read_text()


def test_check_summarises_three_repositories_in_one_run(course, tmp_path, capsys):
    """Static checks only: every fresh render has M1 not done because of its placeholders.

    team-b is given as a git URL (cloned into the cache), the template as a URL too (cloned
    bare), and team-c's own checker is broken: the reference's runs, not the team's copy.
    """
    team_c = copy_team(course, "team-c", tmp_path)
    (team_c / "breast_cancer_diagnosis" / "milestones.py").write_text("raise SystemExit(3)\n")
    commit_all(team_c, "Break our copy of the checker")
    repos = [str(course.teams["team-a"]), f"file://{course.teams['team-b']}", str(team_c)]
    output = tmp_path / "out"
    status, out, err = cli(course, capsys, "check", *repos, "--template",
                           f"file://{course.template}", "-o", str(output))  # fmt: skip
    assert status == 0, err
    summary = rows(output / "check.csv")
    assert [row["team"] for row in summary] == ["team-a", "team-b", "team-c"]
    for row in summary:
        assert "M1" not in row["done"].split()
        assert row["first missing"].startswith("M1 problem-statement")
        score, maximum = row["M1"].split("/")
        assert float(score) < float(maximum)
    assert summary[0]["M4"] == summary[2]["M4"] and summary[0]["total"] == summary[2]["total"]
    deliverables = rows(output / "check-deliverables.csv")
    statement = [d for d in deliverables if d["deliverable"] == "problem-statement"]
    assert len(statement) == 3
    assert all(d["status"] == "fail" and "placeholders left" in d["message"] for d in statement)
    report = json.loads((output / "check" / "team-c.json").read_text())
    assert set(report) >= {"repo", "spec", "score", "max_score", "milestones"}
    assert Path(report["spec"]).is_relative_to(course.cache)  # the reference's spec
    assert out.count("| team-") == 3
    assert "team-b" in (output / "check.md").read_text()
    assert "team-c" in (output / "check.html").read_text()


def test_similar_flags_a_copied_file_and_never_template_code(course, tmp_path, capsys):
    teams = {name: copy_team(course, name, tmp_path) for name in course.teams}
    a, b, c = teams["team-a"], teams["team-b"], teams["team-c"]
    (a / "breast_cancer_diagnosis" / "outliers.py").write_text(OWN_CODE)
    copied = OWN_CODE.replace("clip_outliers", "winsorise").replace("outlier_share", "outside")
    (c / "breast_cancer_diagnosis" / "cleaning.py").write_text(copied)
    (b / "breast_cancer_diagnosis" / "weights.py").write_text(OTHER_CODE)
    # Two teams duplicate the template's training module: template code, never flagged.
    for team in (a, b):
        module = team / "breast_cancer_diagnosis"
        shutil.copy(module / "modeling" / "train.py", module / "train_copy.py")
    for team in teams.values():
        commit_all(team, "Our code")

    output = tmp_path / "out"
    status, out, err = cli(course, capsys, "similar", *map(str, teams.values()), "--template",
                           str(course.template), "-o", str(output))  # fmt: skip
    assert status == 0, err
    pairs = [
        (r["team A"], r["file A"], r["team B"], r["file B"], r["A in B"], r["B in A"])
        for r in rows(output / "similar-files.csv")
    ]
    assert pairs == [
        ("team-a", "breast_cancer_diagnosis/outliers.py", "team-c",
         "breast_cancer_diagnosis/cleaning.py", "100%", "100%"),
    ]  # fmt: skip
    [pair] = rows(output / "similar.csv")
    assert (pair["team A"], pair["team B"], pair["file pairs"]) == ("team-a", "team-c", "1")
    assert "| team-a | team-c | 1 | 100% |" in out


def test_bad_repositories_get_one_line_errors_and_the_others_go_on(course, tmp_path, capsys):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / ".cruft.json").write_text("{}")
    no_record = tmp_path / "no-record"
    no_record.mkdir()
    run(["git", "init", "--quiet"], cwd=no_record)
    broken = copy_team(course, "team-a", tmp_path / "broken")
    (broken / ".cruft.json").write_text("{not json")
    moved = copy_team(course, "team-c", tmp_path / "moved")
    record = json.loads((moved / ".cruft.json").read_text())
    record["commit"] = "0123456789abcdef0123456789abcdef01234567"
    (moved / ".cruft.json").write_text(json.dumps(record))
    good = str(course.teams["team-b"])
    repos = [str(plain), str(no_record), str(tmp_path / "absent"), str(broken), str(moved), good]
    output = tmp_path / "out"
    template = ["--template", str(course.template), "-o", str(output)]

    status, _, err = cli(course, capsys, "diff", *repos, *template, "--exact-commit")
    assert status == 1
    assert "Traceback" not in err
    problems = [line for line in err.splitlines() if line.startswith(("error:", "warning:"))]
    assert [line.split(":")[:2] for line in problems] == [
        ["error", " plain"], ["error", " no-record"], ["error", " absent"], ["error", " team-a"],
        ["error", " team-c"],
    ]  # fmt: skip
    assert "is not a git repository" in problems[0]
    assert "no .cruft.json" in problems[1]
    assert "is not a folder" in problems[2]
    assert ".cruft.json cannot be read" in problems[3]
    assert "template commit 0123456789ab is not in the history" in problems[4]
    summary = rows(output / "diff.csv")
    assert [r["team"] for r in summary] == ["plain", "no-record", "absent", "team-a", "team-c",
                                             "team-b"]  # fmt: skip
    assert summary[-1]["unchanged"] != "" and summary[0]["reference"].startswith("error: ")

    # Without --exact-commit, an unknown commit is a warning: the template's current files.
    status, _, err = cli(course, capsys, "diff", str(moved), good, *template)
    assert status == 0
    assert err.count("warning: team-c: template commit 0123456789ab") == 1
    assert rows(output / "diff.csv")[0]["reference"] == "current files"


def test_the_console_script_reports_a_bad_repository_in_one_line(tmp_path):
    script = Path(sys.executable).parent / "mlops-template"
    done = subprocess.run([script, "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert all(command in done.stdout for command in ("check", "diff", "similar", "activity"))
    done = subprocess.run(
        [script, "check", str(tmp_path), "-o", str(tmp_path / "out"), "--cache", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert errors == [f"error: {tmp_path.name}: {tmp_path} is not a git repository (no .git at "
                      "its top)"]  # fmt: skip
    assert "Traceback" not in done.stderr


def test_activity_counts_commits_and_lines_per_member(course, tmp_path, capsys):
    team = copy_team(course, "team-a", tmp_path)
    (team / "docs" / "notes.md").write_text("one\ntwo\n")
    (team / "uv.lock").write_text("lock\n" * 500)  # a lock file: not counted
    commit_all(team, "Notes")
    (team / "docs" / "notes.md").write_text("one\n")
    commit_all(team, "Fewer notes", ["-c", "user.name=Bo", "-c", "user.email=bo@example.edu"])
    (team / "docs" / "notes.md").write_text("one\nthree\n")
    commit_all(team, "More notes")

    output = tmp_path / "out"
    status, _, err = cli(course, capsys, "activity", str(team), "-o", str(output))
    assert status == 0, err
    members = [
        (r["author"], r["email"], r["commits"], r["share"], r["lines +"], r["lines -"])
        for r in rows(output / "activity.csv")
    ]
    assert members == [
        ("Ann Lee", "ann@example.edu", "2", "67%", "3", "0"),
        ("Bo", "bo@example.edu", "1", "33%", "0", "1"),
    ]


def test_the_instructor_package_passes_ruff():
    ruff = str(Path(sys.executable).parent / "ruff")
    config = ["--no-cache", "--config", "pyproject.toml"]
    run([ruff, "check", *config, "src"], cwd=TEMPLATE_DIR)
    run([ruff, "format", *config, "--check", "src"], cwd=TEMPLATE_DIR)
