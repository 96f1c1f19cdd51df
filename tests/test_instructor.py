"""The instructor command `mlops-template`: check, diff, similar and activity on team repositories.

Team repositories are rendered from a committed snapshot of the template (so their recorded
template commit exists), then copied and changed by each test as a team would. The command runs
in-process; one test runs the installed console script.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from instructor_repos import cli, commit_all, copy_team, line_count, rows

from conftest import TEMPLATE_DIR, run

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
        # The pipeline's outputs in reports/: listed, apart from the team's work.
        ("generated", "reports/extra.json", "", "1", "0", ""),
        ("generated", "reports/metrics.json", "", "1", "0", ""),
    ]
    [summary] = rows(output / "diff.csv")
    assert {k: summary[k] for k in ("missing", "modified", "added", "renamed", "generated")} == {
        "missing": "2", "modified": "2", "added": "3", "renamed": "1", "generated": "2"
    }  # fmt: skip
    # New lines: non-blank lines of the added files (5 + 1 + 4); then the scored extensions.
    new = (summary["new lines"], summary["new stages"], summary["new tests"])
    assert new == ("10", "report", "2")
    assert summary["new endpoints"] == "GET /area"
    assert float(summary["extension"]) == 10 / 20 + 5 * 1 + 1 * 2 + 3 * 1
    commit = run(["git", "rev-parse", "HEAD"], cwd=course.template).stdout
    assert summary["reference"] == commit[:12]
    assert "| team-a | 2 | 2 | 3 | 1 | 2 | 0 |" in out
    assert (output / "diff.md").is_file() and "<table>" in (output / "diff.html").read_text()


def test_check_summarises_three_repositories_in_one_run(course, tmp_path, capsys):
    """Static checks only: every fresh render has M1 not done because of its placeholders.

    team-b is given as a git URL (cloned into the cache), the template as a URL too (cloned
    bare), and team-c's own checker is broken: the reference's runs, not the team's copy.
    """
    team_c = copy_team(course, "team-c", tmp_path)
    (team_c / "course" / "milestones.py").write_text("raise SystemExit(3)\n")
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
    # team-b renders other answers, its package another name.
    b_package = json.loads((b / ".cruft.json").read_text())["context"]["cookiecutter"][
        "module_name"
    ]
    (b / b_package / "weights.py").write_text(OTHER_CODE)
    # Two teams duplicate the template's training module: template code, never flagged.
    for module in (a / "breast_cancer_diagnosis", b / b_package):
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


# --- what a team did, apart from what the pipeline and `make setup` wrote ------------------------

PIPELINE_RUN = """
{marker_start}
| | |
|---|---|
| Registered model | `breast_cancer_diagnosis` version 3 |
| MLflow run | `{run}` |
| Classes | 2: benign, malignant (positive: malignant) |
| Inputs | 30 features: 30 numeric |
The measured results of the champion on the held-out test split, written by the card stage of
the pipeline after every promotion, the same for every team that trains on the same data.
{marker_end}
"""


def run_the_pipeline(team: Path, run_id: str = "a" * 32) -> None:
    """What committing a pipeline run adds to a repository, as `make setup && make pipeline`
    would: the cards' measured sections, reports/, .dvcignore, dvc.lock with the promote stage."""
    card = team / "docs" / "model-card.md"
    text = card.read_text()
    start, end = "<!-- pipeline:identity:start -->", "<!-- pipeline:identity:end -->"
    before, _, rest = text.partition(start)
    _, _, after = rest.partition(end)
    block = PIPELINE_RUN.format(marker_start=start, marker_end=end, run=run_id).strip()
    card.write_text(before + block + after)
    champion = {"registered_model": "breast_cancer_diagnosis", "version": 3, "run_id": run_id}
    (team / "reports" / "promotion.json").write_text(json.dumps({"champion_after": champion}))
    (team / ".dvcignore").write_text("# Add patterns of files dvc should ignore\n")
    (team / "dvc.lock").write_text("schema: '2.0'\nstages:\n  promote:\n    cmd: x\n")
    commit_all(team, "Run the pipeline", ["-c", "user.name=Bot", "-c", "user.email=bot@e.org"])


def test_the_pipelines_output_is_nobodys_work_and_nobodys_copy(course, tmp_path, capsys):
    a, c = copy_team(course, "team-a", tmp_path), copy_team(course, "team-c", tmp_path)
    for team in (a, c):  # the same data: the same measured sections in both cards
        run_the_pipeline(team)
    output = tmp_path / "out"
    template = ["--template", str(course.template), "-o", str(output)]

    status, _, err = cli(course, capsys, "similar", str(a), str(c), *template)
    assert status == 0, err
    assert rows(output / "similar.csv") == []  # not a copy: neither team wrote those lines

    status, _, err = cli(course, capsys, "diff", str(a), *template)
    assert status == 0, err
    changes = {(r["change"], r["path"]) for r in rows(output / "diff-files.csv")}
    assert changes == {
        ("generated", "docs/model-card.md"),
        ("generated", ".dvcignore"),
        ("generated", "reports/promotion.json"),
    }
    [summary] = rows(output / "diff.csv")
    assert (summary["modified"], summary["added"], summary["generated"]) == ("0", "0", "3")
    assert (summary["lines +"], summary["lines -"]) == ("0", "0")

    # A team member writes in the card, outside the measured sections: that is counted.
    card = a / "docs" / "model-card.md"
    card.write_text(card.read_text().replace("## Uses\n", "## Uses\n\nOur own words.\n", 1))
    commit_all(a, "Write the card's uses")
    status, _, err = cli(course, capsys, "activity", str(a), "-o", str(output))
    assert status == 0, err
    lines = {r["author"]: (r["lines +"], r["lines -"]) for r in rows(output / "activity.csv")}
    assert lines == {"Bot": ("0", "0"), "Ann Lee": ("2", "0")}


def test_check_tells_a_deleted_deliverable_from_an_unfilled_one(course, tmp_path, capsys):
    """And the MLflow evidence of M2 comes from what a clone holds, with no MLflow store."""
    deleted, kept = copy_team(course, "team-a", tmp_path), copy_team(course, "team-c", tmp_path)
    (deleted / "docs" / "problem-statement.md").unlink()
    commit_all(deleted, "Drop the problem statement")
    run_the_pipeline(kept)
    output = tmp_path / "out"
    status, _, err = cli(course, capsys, "check", str(deleted), str(kept), "--template",
                         str(course.template), "-o", str(output))  # fmt: skip
    assert status == 0, err
    by_team = {r["team"]: r for r in rows(output / "check.csv")}
    assert by_team["team-a"]["deleted"] == "M1 problem-statement"
    assert not by_team["team-a"]["first missing"].startswith("M1 problem-statement")
    assert by_team["team-c"]["deleted"] == "none"
    assert by_team["team-c"]["first missing"].startswith("M1 problem-statement")
    tracking = [
        d for d in rows(output / "check-deliverables.csv")
        if (d["team"], d["deliverable"]) == ("team-c", "experiments")
    ]  # fmt: skip
    assert [(d["status"], d["score"]) for d in tracking] == [("pass", "2")]


def test_a_changed_render_in_the_cache_is_rendered_again(course, tmp_path, capsys):
    """A cached render is checked against its manifest before it is reused: one changed there
    (here, a checker that gives everyone full marks) is thrown away."""
    team, cache = str(course.teams["team-a"]), tmp_path / "cache"
    output = tmp_path / "out"
    template = ["--template", str(course.template), "-o", str(output)]
    assert cli(course, capsys, "check", team, *template, cache=cache)[0] == 0
    honest = rows(output / "check.csv")[0]["total"]
    [checker] = cache.glob("references/*/*/course/milestones.py")
    original = checker.read_text()
    checker.write_text(
        "import json, sys\nreport = sys.argv[sys.argv.index('--json') + 1]\n"
        "json.dump({'score': 10, 'max_score': 10, 'milestones': []}, open(report, 'w'))\n"
    )
    assert cli(course, capsys, "check", team, *template, cache=cache)[0] == 0
    assert rows(output / "check.csv")[0]["total"] == honest
    assert checker.read_text() == original


def test_csv_cells_never_start_a_formula_and_the_terminal_gets_no_escapes(course, tmp_path, capsys):
    team = copy_team(course, "team-a", tmp_path)
    (team / "docs" / "notes.md").write_text("notes\n")
    commit_all(
        team, "=cmd", ["-c", 'user.name==HYPERLINK("http://e.org")', "-c", "user.email=a@e.org"]
    )
    (team / "docs" / "more.md").write_text("more\n")
    commit_all(team, "colour", ["-c", "user.name=\x1b[31mRED\x1b[0m", "-c", "user.email=b@e.org"])
    output = tmp_path / "out"
    status, out, err = cli(course, capsys, "activity", str(team), "-o", str(output))
    assert status == 0, err
    authors = [r["author"] for r in rows(output / "activity.csv")]
    assert sorted(authors) == ['\'=HYPERLINK("http://e.org")', "[31mRED[0m"]
    assert "\x1b" not in out + err + (output / "activity.html").read_text()
