"""Run the reference's milestone checker on a team's repository and read its JSON report.

The checker is `<reference>/<module>/milestones.py` from the render of the team's recorded
template commit: the team's own copy may have been edited, the reference's has not. It runs as a
plain script with this tool's Python (it needs only the standard library and PyYAML), on the
team's repository, with the reference's `milestones.yaml` as the spec. Without `--run` it only
reads files and git; with it, it also runs the team's tests and linters from the team's `.venv`,
that is, the team's code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlops_template.errors import ToolError
from mlops_template.repos import Team

FAILED = ("fail", "partial")


def run_checker(team: Team, reference: Path, report: Path, run: bool) -> dict:
    """The checker's report on `team` (its JSON document), written to `report` too."""
    checker = reference / team.module / "milestones.py"
    spec = reference / "milestones.yaml"
    if not checker.is_file() or not spec.is_file():
        raise ToolError(
            f"the template at this commit has no milestone checker ({team.module}/milestones.py "
            "and milestones.yaml): re-render with a newer template, see --template"
        )
    report.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(checker), "--repo", str(team.path), "--spec", str(spec)]
    command += ["--json", str(report), *(["--run"] if run else [])]
    # The instructor's own tracking server must not be read as the team's store.
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=3600 if run else 300
        )
    except subprocess.TimeoutExpired as error:
        raise ToolError(f"the milestone checker took more than {error.timeout:.0f} s") from None
    if done.returncode not in (0, 1) or not report.is_file():
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise ToolError(f"the milestone checker failed: {lines[-1] if lines else done.returncode}")
    return json.loads(report.read_text(encoding="utf-8"))


def is_done(milestone: dict) -> bool:
    """Complete: it has deliverables and none failed (not checked counts as not failed)."""
    deliverables = milestone.get("deliverables") or []
    return bool(deliverables) and all(d["status"] not in FAILED for d in deliverables)


def first_missing(report: dict, count: int = 3) -> list[str]:
    """The first deliverables not done, in milestone order: `M1 problem-statement`."""
    missing = [
        f"{m['id']} {d['id']}"
        for m in report["milestones"]
        for d in m["deliverables"]
        if d["status"] in FAILED
    ]
    return missing[:count] + ([f"... {len(missing) - count} more"] if len(missing) > count else [])


def summary_row(report: dict, milestone_ids: list[str]) -> list[str]:
    """Score per milestone, total, milestones done and first missing deliverables."""
    by_id = {m["id"]: m for m in report["milestones"]}
    cells = []
    for milestone_id in milestone_ids:
        m = by_id.get(milestone_id)
        cells.append("n/a" if not m or not m["max_score"] else f"{m['score']:g}/{m['max_score']:g}")
    share = report["score"] / report["max_score"] if report["max_score"] else 0.0
    cells.append(f"{report['score']:g}/{report['max_score']:g} ({100 * share:.0f}%)")
    cells.append(" ".join(m["id"] for m in report["milestones"] if is_done(m)) or "none")
    cells.append(", ".join(first_missing(report)) or "nothing")
    return cells
