"""The milestone checker: each check kind on a small repository built here, the command line and
its outputs (table, JSON, GitHub Classroom's result), and this project's own milestones.yaml.

The last test is slow: in a scratch copy after a whole pipeline run (conftest.py), M2-M4 are done.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml
from scratch import commit, run

from {{ cookiecutter.module_name }} import milestones
from {{ cookiecutter.module_name }}.config import PROJ_ROOT

MARK = "[More Information Needed]"
CHECKER = Path(milestones.__file__)


# The small repositories built here are plain git repositories: this process's environment.
ENV = dict(os.environ)


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "team"
    root.mkdir()
    run(["git", "init", "--quiet"], root, ENV)
    return root


def write(repo: Path, name: str, text: str) -> Path:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def check(repo: Path, kind: str, slow: bool = False, **fields) -> tuple[str, float, str]:
    """Run one check; `slow`: as with --run."""
    return milestones.CHECKS[kind](milestones.Context(repo, MARK, slow), fields)


def test_filled_counts_the_placeholders_left(repo):
    write(repo, "docs/a.md", f"# A\n{MARK}\n{MARK}\n")
    assert check(repo, "filled", path="docs/a.md", placeholders=2)[:2] == ("fail", 0.0)
    write(repo, "docs/a.md", f"# A\nours\n{MARK}\n")
    assert check(repo, "filled", path="docs/a.md", placeholders=2)[:2] == ("partial", 0.5)
    write(repo, "docs/a.md", "# A\nours\nours\n")
    assert check(repo, "filled", path="docs/a.md", placeholders=2)[0] == "pass"
    assert check(repo, "filled", path="docs/b.md", placeholders=2)[0] == "fail"


def test_files_wants_every_pattern_matched(repo):
    write(repo, "Dockerfile", "FROM scratch\n")
    assert check(repo, "files", paths=["Dockerfile"])[0] == "pass"
    status, fraction, message = check(repo, "files", paths=["Dockerfile", "deploy/*.yaml"])
    assert (status, fraction) == ("partial", 0.5) and "deploy/*.yaml" in message


def test_committed_wants_tracked_and_clean(repo):
    write(repo, "uv.lock", "v1\n")
    assert check(repo, "committed", paths=["uv.lock"])[0] == "fail"  # untracked
    commit(repo, ENV, "work")
    assert check(repo, "committed", paths=["uv.lock"])[0] == "pass"
    write(repo, "uv.lock", "v2\n")
    assert "uncommitted" in check(repo, "committed", paths=["uv.lock"])[2]


def test_dvc_pipeline_wants_stages_run_and_the_lock_committed(repo):
    stage = {"cmd": "x"}
    stages = {"a": stage, "b": stage}
    write(repo, "dvc.yaml", yaml.safe_dump({"stages": stages}))
    assert check(repo, "dvc_pipeline", stages=["a", "b"])[0] == "partial"  # never ran
    ran = {key: {} for key in ("a", "b")}
    write(repo, "dvc.lock", yaml.safe_dump({"schema": "2.0", "stages": ran}))
    commit(repo, ENV, "work")
    assert check(repo, "dvc_pipeline", stages=["a", "b"])[0] == "pass"
    assert check(repo, "dvc_pipeline", stages=["a", "c"])[0] == "partial"


def test_dvc_remote_wants_a_default_remote_holding_every_cached_output(repo, tmp_path):
    assert check(repo, "dvc_remote")[0] == "fail"
    write(repo, ".dvc/config", "[core]\n    remote = storage\n['remote \"storage\"']\n")
    (repo / ".dvc" / "config").write_text(
        (repo / ".dvc" / "config").read_text() + "    url = ../../remote\n"
    )
    settings = {"cache": False}
    train = {"outs": ["model", {"m.json": settings}]}
    stages = {"train": train}
    write(repo, "dvc.yaml", yaml.safe_dump({"stages": stages}))
    outs = [{"path": "model", "md5": "ab" + "c" * 30}, {"path": "m.json", "md5": "ef" + "0" * 30}]
    locked = {"outs": outs}
    ran = {"train": locked}
    write(repo, "dvc.lock", yaml.safe_dump({"stages": ran}))
    status, fraction, _ = check(repo, "dvc_remote")
    assert (status, fraction) == ("partial", 0.5)  # configured, nothing pushed
    write(tmp_path / "remote", "files/md5/ab/" + "c" * 30, "model")  # what `dvc push` writes
    assert check(repo, "dvc_remote")[0] == "pass"  # m.json is cache: false, never pushed


def mlflow_store(path: Path, runs: int, alias: bool) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE experiments (experiment_id INTEGER, lifecycle_stage TEXT)")
        db.execute("CREATE TABLE runs (experiment_id INTEGER, lifecycle_stage TEXT)")
        db.execute("CREATE TABLE registered_model_aliases (name TEXT, alias TEXT, version INT)")
        db.execute("INSERT INTO experiments VALUES (1, 'active')")
        db.executemany("INSERT INTO runs VALUES (1, 'active')", [()] * runs)
        if alias:
            db.execute("INSERT INTO registered_model_aliases VALUES ('m', 'champion', 1)")


def test_mlflow_reads_runs_and_the_alias_from_the_sqlite_store(repo, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    fields = {"min_runs": 1, "registered_model": "m", "alias": "champion"}
    assert check(repo, "mlflow", **fields)[0] == "fail"  # no mlflow.db
    mlflow_store(repo / "mlflow.db", runs=2, alias=False)
    assert check(repo, "mlflow", **fields)[:2] == ("partial", 0.5)
    other = repo / "other.db"
    mlflow_store(other, runs=1, alias=True)
    write(repo, ".env", f"MLFLOW_TRACKING_URI=sqlite:///{other}\n")
    assert check(repo, "mlflow", **fields)[0] == "pass"


class Tracking(BaseHTTPRequestHandler):
    """The three calls of MLflow's REST API the checker makes."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        runs = {"runs": [{}]} if "runs/search" in self.path else {}
        self.answer({"experiments": [{"experiment_id": "1"}], **runs})

    def do_GET(self):
        version = {"version": "1"}
        self.answer({"model_version": version})

    def answer(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_mlflow_reads_a_tracking_server(repo, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), Tracking)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{server.server_port}")
        fields = {"min_runs": 1, "registered_model": "m", "alias": "champion"}
        assert check(repo, "mlflow", **fields)[0] == "pass"
        assert check(repo, "mlflow", **{**fields, "min_runs": 2})[0] == "partial"
    finally:
        server.shutdown()


def test_json_count_counts_items_at_a_key_across_files(repo):
    write(repo, "deploy/d1.json", json.dumps({"panels": [1, 2]}))
    write(repo, "deploy/d2.json", json.dumps({"panels": [3]}))
    assert check(repo, "json_count", path="deploy/*.json", key="panels", min=3)[0] == "pass"
    assert check(repo, "json_count", path="deploy/*.json", key="panels", min=6)[0] == "partial"
    assert check(repo, "json_count", path="none/*.json", key="panels", min=1)[0] == "fail"
    write(repo, "deploy/d3.json", "{broken")
    assert check(repo, "json_count", path="deploy/*.json", key="panels", min=1)[0] == "fail"


def test_csv_rows_wants_measured_values(repo):
    write(repo, "reports/emissions.csv", "emissions,other\n1.5e-07,x\n")
    fields = {"path": "reports/emissions.csv", "column": "emissions", "min": 1}
    assert check(repo, "csv_rows", **fields)[0] == "pass"
    write(repo, "reports/emissions.csv", "emissions,other\n,x\n")
    assert check(repo, "csv_rows", **fields)[0] == "fail"


def test_front_matter_wants_each_key_set(repo):
    write(repo, "card.md", "---\nmodel-index: [1]\nco2_eq_emissions: null\n---\n# Card\n")
    keys = ["model-index", "co2_eq_emissions"]
    assert check(repo, "front_matter", path="card.md", keys=keys)[:2] == ("partial", 0.5)
    write(repo, "card.md", "---\nmodel-index: [1]\nco2_eq_emissions: {emissions: 1}\n---\n")
    assert check(repo, "front_matter", path="card.md", keys=keys)[0] == "pass"
    write(repo, "card.md", "# no header\n")
    assert check(repo, "front_matter", path="card.md", keys=keys)[0] == "fail"


def test_routes_finds_the_declared_paths(repo):
    write(
        repo, "app/routes.py", '@router.get("/health")\ndef h(): ...\n@app.post(\n  "/predict")\n'
    )
    write(repo, "app/main.py", 'app.add_route("/version", handler)\n')
    wanted = ["/health", "/predict", "/version"]
    assert check(repo, "routes", sources="app/*.py", paths=wanted)[0] == "pass"
    status, _, message = check(repo, "routes", sources="app/*.py", paths=[*wanted, "/ready"])
    assert status == "partial" and "/ready" in message


def test_command_runs_only_with_run_and_in_the_teams_environment(repo):
    fields = {"run": ["{venv}/python", "-c", "import sys; sys.exit(0)"]}
    status, _, message = check(repo, "command", slow=True, **fields)
    assert status == "not checked" and "make setup" in message  # no .venv yet
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "python").symlink_to(sys.executable)
    assert check(repo, "command", slow=False, **fields)[0] == "not checked"
    assert check(repo, "command", slow=True, **fields)[0] == "pass"
    failing = {"run": ["{venv}/python", "-c", "print('2 failed'); raise SystemExit(1)"]}
    status, _, message = check(repo, "command", slow=True, **failing)
    assert status == "fail" and "2 failed" in message


SPEC = {
    "placeholder": MARK,
    "milestones": [
        {
            "id": "M1",
            "title": "Inception",
            "deliverables": [
                {
                    "id": "statement",
                    "title": "Problem statement",
                    "points": 4,
                    "checks": [{"kind": "filled", "path": "docs/p.md", "placeholders": 4}],
                }
            ],
            "skipped": [{"id": "templates", "title": "Templates", "reason": "switched off"}],
        },
        {
            "id": "M2",
            "title": "Reproducibility",
            "deliverables": [
                {
                    "id": "lock",
                    "title": "Lock file",
                    "points": 1,
                    "checks": [{"kind": "files", "paths": ["uv.lock"]}],
                },
            ],
        },
    ],
}


def run_checker(repo: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The checker as an instructor runs it: a plain script, from elsewhere, isolated."""
    command = [sys.executable, "-I", str(CHECKER), "--repo", str(repo), *args]
    return subprocess.run(command, cwd=repo.parent, capture_output=True, text=True, env=env)


def test_the_command_line_scores_exits_and_writes_json_and_classroom(repo, tmp_path):
    spec = write(tmp_path, "spec.yaml", yaml.safe_dump(SPEC))
    write(repo, "docs/p.md", f"ours\n{MARK}\n")  # three of four placeholders filled
    outputs = {"GITHUB_OUTPUT": str(tmp_path / "github-output")}
    until = run_checker(repo, "--spec", str(spec), "--until", "M1")
    assert until.returncode == 1, until.stderr  # M1 is partial
    write(repo, "docs/p.md", "ours\n")
    done = run_checker(repo, "--spec", str(spec), "--until", "M1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "n/a" in done.stdout and "switched off" in done.stdout
    write(repo, "docs/p.md", f"ours\n{MARK}\n")
    out = tmp_path / "out"
    arguments = [
        "--spec",
        str(spec),
        "--json",
        str(out / "r.json"),
        "--classroom",
        str(out / "c.b64"),
    ]
    full = run_checker(repo, *arguments, env={**os.environ, **outputs})
    assert full.returncode == 1  # M2 fails: no uv.lock

    report = json.loads((out / "r.json").read_text())
    assert set(report) >= {"repo", "spec", "score", "max_score", "milestones"}
    assert (report["score"], report["max_score"]) == (3.0, 5.0)
    first = report["milestones"][0]
    assert set(first) >= {"id", "title", "score", "max_score", "deliverables", "skipped"}
    assert first["deliverables"][0] == {
        "id": "statement",
        "title": "Problem statement",
        "status": "partial",
        "score": 3.0,
        "max_score": 4.0,
        "message": "1 of 4 placeholders left in docs/p.md",
    }

    encoded = (out / "c.b64").read_text().strip()
    assert (tmp_path / "github-output").read_text() == f"result={encoded}\n"
    result = json.loads(base64.b64decode(encoded))
    assert (result["version"], result["status"], result["max_score"]) == (1, "fail", 5.0)
    scores = [(t["name"], t["status"], t["score"], t["max_score"]) for t in result["tests"]]
    assert scores == [("M1 Problem statement", "fail", 3.0, 4.0), ("M2 Lock file", "fail", 0, 1.0)]
    assert all(
        {"message", "test_code", "filename", "line_no", "duration"} <= set(t)
        for t in result["tests"]
    )


def test_a_bad_spec_or_until_exits_2_in_one_line(repo, tmp_path):
    spec = write(
        tmp_path,
        "spec.yaml",
        yaml.safe_dump(
            {
                "milestones": [
                    {
                        "id": "M1",
                        "deliverables": [{"id": "x", "points": 1, "checks": [{"kind": "magic"}]}],
                    }
                ]
            }
        ),
    )
    bad = run_checker(repo, "--spec", str(spec))
    assert bad.returncode == 2 and bad.stderr.startswith("milestones: ") and "magic" in bad.stderr
    good = write(tmp_path, "good.yaml", yaml.safe_dump(SPEC))
    assert run_checker(repo, "--spec", str(good), "--until", "M9").returncode == 2


def test_the_checker_imports_only_the_standard_library_and_yaml():
    tree = ast.parse(CHECKER.read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and not node.level
    }
    relative = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level]
    assert not relative
    assert imported - set(sys.stdlib_module_names) == {"yaml"}


def test_this_projects_milestones_match_its_documents(tmp_path):
    """Every document M1 asks for exists with at most the placeholders the template shipped,
    and the checker reports each by what is left: a fresh project's M1 is not done."""
    spec = yaml.safe_load((PROJ_ROOT / "milestones.yaml").read_text(encoding="utf-8"))
    m1 = next(m for m in spec["milestones"] if m["id"] == "M1")
    only_m1 = write(tmp_path, "m1.yaml", yaml.safe_dump({**spec, "milestones": [m1]}))
    report = milestones.evaluate(PROJ_ROOT, only_m1, run=False)
    untouched = True
    scored_m1 = report["milestones"][0]["deliverables"]
    for deliverable, scored in zip(m1["deliverables"], scored_m1, strict=True):
        for check in (c for c in deliverable["checks"] if c["kind"] == "filled"):
            left = (PROJ_ROOT / check["path"]).read_text(encoding="utf-8").count(MARK)
            assert left <= check["placeholders"], check["path"]
            untouched &= left == check["placeholders"]
            assert (scored["status"] == "pass") == (left == 0), scored
    if untouched:
        assert not report["milestones"][0]["done"]


@pytest.mark.slow
def test_after_the_pipeline_m2_to_m4_are_done(finished_pipeline, tmp_path, monkeypatch):
    root, env = finished_pipeline  # a scratch copy after `dvc repro` (conftest.py)
    run(["dvc", "remote", "add", "--default", "storage", str(tmp_path / "remote")], root, env)
    run(["dvc", "push"], root, env)
    commit(root, env, "push the outputs")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env["MLFLOW_TRACKING_URI"])
    report = milestones.evaluate(root, root / "milestones.yaml", run=False)
    for milestone in report["milestones"][1:4]:
        problems = [d for d in milestone["deliverables"] if d["status"] in ("fail", "partial")]
        if not (PROJ_ROOT / "uv.lock").is_file():  # not committed in a project never set up
            problems = [d for d in problems if d["id"] != "lockfile"]
        assert not problems, (milestone["id"], problems)
