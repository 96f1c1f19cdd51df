"""Run the reference's milestone checker on a team's repository and read its JSON report.

The checker is `<reference>/course/milestones.py` (`<reference>/<module>/milestones.py` for a
template from before the checker left the package) from the render of the team's recorded
template commit: the team's own copy may have been edited, the reference's has not. It runs as a
plain script with this tool's Python (it needs only the standard library and PyYAML), on the
team's repository, with the reference's milestones.yaml as the spec. Without `--run` it only
reads files (never through a link) and git (which it keeps from running anything), and asks no
server; with it, it also runs the team's tests and linters from the team's `.venv`, that is,
the team's code: do that in a throwaway container or VM (docs/instructors.md, Security).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mlops_template import git as git_module
from mlops_template.errors import ToolError
from mlops_template.repos import Team

FAILED = ("fail", "partial")
# Where a reference keeps its checker and spec: since the checker left the package, and before.
CHECKER_PLACES = (("course/milestones.py", "course/milestones.yaml"),
                  ("{module}/milestones.py", "milestones.yaml"))  # fmt: skip
# With --run the checker runs the team's tests: it gets at least this long.
RUN_SECONDS = 3600


def checker_of(reference: Path, module: str) -> tuple[Path, Path]:
    """The reference's milestone checker and spec."""
    for checker, spec in CHECKER_PLACES:
        pair = reference / checker.format(module=module), reference / spec
        if all(path.is_file() for path in pair):
            return pair
    raise ToolError(
        "the template at this commit has no milestone checker (course/milestones.py): "
        "re-render with a newer template, see --template"
    )


def run_checker(team: Team, reference: Path, report: Path, run: bool) -> dict:
    """The checker's report on `team` (its JSON document), written to `report` too."""
    checker, spec = checker_of(reference, team.module)
    report.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(checker), "--repo", str(team.path), "--spec", str(spec)]
    command += ["--json", str(report), *(["--run"] if run else [])]
    # Nothing of the instructor's environment is the team's: no tracking URI, no GIT_* variable.
    env = {k: v for k, v in git_module.environment().items() if k != "MLFLOW_TRACKING_URI"}
    timeout = max(git_module.TIMEOUT, RUN_SECONDS) if run else git_module.TIMEOUT
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise ToolError(
            f"the milestone checker took more than {error.timeout:.0f} s (see --timeout)"
        ) from None
    if done.returncode not in (0, 1) or not report.is_file():
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise ToolError(f"the milestone checker failed: {lines[-1] if lines else done.returncode}")
    return json.loads(report.read_text(encoding="utf-8"))


def is_done(milestone: dict) -> bool:
    """Complete: it has deliverables and every one passed."""
    deliverables = milestone.get("deliverables") or []
    return bool(deliverables) and all(d["status"] == "pass" for d in deliverables)


def not_done(report: dict, deleted: bool) -> list[str]:
    """Deliverables not done, in milestone order (`M1 problem-statement`): those whose files are
    gone (`deleted`), or those there but unfinished."""
    return [
        f"{m['id']} {d['id']}"
        for m in report["milestones"]
        for d in m["deliverables"]
        if d["status"] in FAILED and bool(d.get("deleted")) is deleted
    ]


def first(items: list[str], count: int = 3) -> str:
    shown = items[:count] + ([f"... {len(items) - count} more"] if len(items) > count else [])
    return ", ".join(shown)


def summary_row(report: dict, milestone_ids: list[str]) -> list[str]:
    """Score per milestone, total, milestones done, deleted and first unfinished deliverables."""
    by_id = {m["id"]: m for m in report["milestones"]}
    cells = []
    for milestone_id in milestone_ids:
        m = by_id.get(milestone_id)
        cells.append("n/a" if not m or not m["max_score"] else f"{m['score']:g}/{m['max_score']:g}")
    share = report["score"] / report["max_score"] if report["max_score"] else 0.0
    cells.append(f"{report['score']:g}/{report['max_score']:g} ({100 * share:.0f}%)")
    cells.append(" ".join(m["id"] for m in report["milestones"] if is_done(m)) or "none")
    cells.append(first(not_done(report, deleted=True)) or "none")
    cells.append(first(not_done(report, deleted=False)) or "nothing")
    return cells
