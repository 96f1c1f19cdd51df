"""Check a team repository against the course milestones: `make milestones`.

The contract (the instructor's tools run this very file on many repositories, so keep it):

- One file, standard library and PyYAML only, no import from the package: it runs as
  `python -m <package>.milestones` inside the project and as `python path/to/milestones.py
  --repo PATH` from another checkout with another Python (3.9 or later). What needs the team's
  tools runs as a subprocess in the team's repository: git, and `<repo>/.venv/bin/...` (absent:
  "not checked: run make setup"). One file holds every check kind so that it can be copied alone.
- CLI: `--repo PATH` (default: the project holding this file), `--spec FILE` (default
  `<repo>/milestones.yaml`; an instructor passes the reference's), `--until M3` (only milestones
  up to M3 decide the exit status), `--json FILE`, `--classroom FILE`, `--run` (also run the
  `command` checks: tests, lint; they are "not checked" without it).
- Output: a table on stdout. Exit 0 when no deciding milestone has a failed or partial
  deliverable, 1 otherwise, 2 when the spec or the arguments are invalid.
- JSON (`--json`): {"repo", "spec", "score", "max_score", "milestones": [{"id", "title", "score",
  "max_score", "done", "skipped": [{"id", "title", "reason"}], "deliverables": [{"id", "title",
  "status": "pass" | "partial" | "fail" | "not checked", "score", "max_score", "message"}]}]}.
- GitHub Classroom (`--classroom`): base64 of {"version": 1, "status", "max_score", "tests":
  [{"name", "status", "score", "max_score", "message", "test_code", "filename", "line_no",
  "duration"}]}, one test per deliverable of the deciding milestones, with partial scores. In a
  CI step (GITHUB_OUTPUT set) it is also the step's output `result`: the grading reporter reads
  each runner's result from the variable `<RUNNER>_RESULTS`, so give the step an id
  (`milestones`), pass its `result` output to the reporter as `MILESTONES_RESULTS`, and list
  `milestones` in `runners`.

The spec (milestones.yaml) lists milestones, each with deliverables worth `points`; a
deliverable's score is its points times the mean of its checks' fractions. Check kinds:

- filled {path, placeholders}: the file exists; fraction of the placeholders it had when
  generated (spec `placeholder`) that are gone.
- files {paths}: each glob matches at least one file.
- committed {paths}: each path is tracked by git and has no uncommitted change.
- dvc_pipeline {stages}: dvc.yaml defines the stages; dvc.lock records them and is committed.
- dvc_remote {}: a default remote is configured, and the cached outputs of dvc.lock (and of
  `.dvc` files) are in it (a folder remote is read directly; another needs `--run`).
- mlflow {min_runs, registered_model, alias}: runs in the tracking store (MLFLOW_TRACKING_URI
  from the environment or `.env`, else mlflow.db) and the registry alias set.
- json_count {path, key, min}: the list at `key` (dotted) in the JSON file(s) has `min` items.
- csv_rows {path, column, min}: the CSV has `min` rows with a number in `column`.
- front_matter {path, keys}: the Markdown file's YAML header sets each key.
- routes {sources, paths}: the Python files declare an HTTP route for each path.
- command {run, timeout}: the command exits 0 in the repository (`{venv}`: `<repo>/.venv/bin`).
"""

from __future__ import annotations

import argparse
import base64
import configparser
import csv
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

PASS, PARTIAL, FAIL, NOT_CHECKED = "pass", "partial", "fail", "not checked"
Result = tuple  # (status, fraction of the check's credit in [0, 1], message)
ROUTE = re.compile(
    r"\.(?:get|post|put|patch|delete|head|options|route|api_route|add_route|add_api_route)"
    r"\(\s*[\"'](/[^\"']*)[\"']"
)


class SpecError(Exception):
    """The spec or the arguments are invalid."""


class Context:
    """The repository under check and how to check it."""

    def __init__(self, repo: Path, placeholder: str, run: bool) -> None:
        self.repo, self.placeholder, self.run = repo, placeholder, run
        self.venv = repo / ".venv" / "bin"

    def git(self, *args: str) -> subprocess.CompletedProcess | None:
        try:
            return subprocess.run(["git", *args], cwd=self.repo, capture_output=True, text=True)
        except OSError:
            return None


def verdict(fraction: float, message: str) -> Result:
    fraction = max(0.0, min(1.0, fraction))
    return (PASS if fraction >= 1 else PARTIAL if fraction > 0 else FAIL), fraction, message


def share(wanted: list, missing: list, what: str, done: str) -> Result:
    """The verdict on a list of things of which `missing` are missing."""
    message = f"{what}: {', '.join(map(str, missing))}" if missing else done
    return verdict(1 - len(missing) / len(wanted), message)


def read_yaml(path: Path) -> dict:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return document if isinstance(document, dict) else {}


def check_filled(ctx: Context, check: dict) -> Result:
    path, total = ctx.repo / check["path"], int(check["placeholders"])
    if not path.is_file():
        return FAIL, 0.0, f"{check['path']} is missing"
    left = path.read_text(encoding="utf-8", errors="replace").count(ctx.placeholder)
    message = f"{left} of {total} placeholders left in {check['path']}"
    return verdict(1 - left / max(total, left, 1), message if left else "filled")


def check_files(ctx: Context, check: dict) -> Result:
    missing = [p for p in check["paths"] if not any(f.is_file() for f in ctx.repo.glob(p))]
    return share(check["paths"], missing, "missing", "present")


def uncommitted(ctx: Context, path: str) -> str | None:
    """None when `path` is tracked by git and clean, else what is wrong."""
    tracked, status = ctx.git("ls-files", "--error-unmatch", path), ctx.git("status", "-s", path)
    if tracked is None or status is None:
        return "git is not installed"
    if tracked.returncode:
        return f"{path} is not committed"
    return f"{path} has uncommitted changes" if status.stdout.strip() else None


def check_committed(ctx: Context, check: dict) -> Result:
    problems = [p for p in (uncommitted(ctx, path) for path in check["paths"]) if p]
    return verdict(1 - len(problems) / len(check["paths"]), "; ".join(problems) or "committed")


def check_dvc_pipeline(ctx: Context, check: dict) -> Result:
    wanted = list(check["stages"])
    defined = read_yaml(ctx.repo / "dvc.yaml").get("stages") or {}
    locked = read_yaml(ctx.repo / "dvc.lock").get("stages") or {}
    problems = [f"{s} is not in dvc.yaml" for s in wanted if s not in defined]
    problems += [f"{s} never ran (not in dvc.lock)" for s in wanted if s not in locked]
    lock = uncommitted(ctx, "dvc.lock") if (ctx.repo / "dvc.lock").is_file() else "no dvc.lock"
    problems += [f"{lock}: run `make pipeline`, then commit"] if lock else []
    return verdict(1 - len(problems) / (2 * len(wanted) + 1), "; ".join(problems) or "committed")


def default_remote(ctx: Context) -> tuple[str | None, str | None]:
    """The default DVC remote's name and URL; a relative folder is resolved against .dvc/."""
    config = configparser.ConfigParser(interpolation=None)
    config.read([ctx.repo / ".dvc" / "config", ctx.repo / ".dvc" / "config.local"])
    name = config.get("core", "remote", fallback=None)
    url = config.get(f"'remote \"{name}\"'", "url", fallback=None) if name else None
    if url and "://" not in url:
        url = str((ctx.repo / ".dvc" / url).resolve())
    return name, url


def cached_hashes(ctx: Context) -> set[str]:
    """md5 of what DVC caches: dvc.lock's outputs but those `cache: false`, and `.dvc` files."""
    uncached = set()
    for stage in (read_yaml(ctx.repo / "dvc.yaml").get("stages") or {}).values():
        for out in [o for key in ("outs", "metrics", "plots") for o in stage.get(key) or []]:
            settings = out.values() if isinstance(out, dict) else []
            if any(isinstance(s, dict) and s.get("cache") is False for s in settings):
                uncached |= set(out)
    outs = [o for s in (read_yaml(ctx.repo / "dvc.lock").get("stages") or {}).values()
            for o in s.get("outs") or [] if o.get("path") not in uncached]  # fmt: skip
    outs += [o for f in ctx.repo.glob("**/*.dvc") for o in read_yaml(f).get("outs") or []]
    return {o["md5"] for o in outs if o.get("md5")}


def check_dvc_remote(ctx: Context, check: dict) -> Result:
    name, url = default_remote(ctx)
    hashes = cached_hashes(ctx)
    if not url:
        return FAIL, 0.0, "no default DVC remote: `dvc remote add --default <name> <url>`"
    if not hashes:
        return PARTIAL, 0.5, f"remote {name} set; nothing to push yet: run `make pipeline`"
    if "://" not in url:  # a folder: look for each hash where DVC 3 stores it
        store = Path(url) / "files" / "md5"
        missing = [h for h in hashes if not (store / h[:2] / h[2:]).exists()]
        message = f"remote {name}: {len(missing)} of {len(hashes)} outputs not pushed (`dvc push`)"
        return verdict(1 - 0.5 * len(missing) / len(hashes), message if missing else "pushed")
    status, _, output = run_command(ctx, ["{venv}/dvc", "status", "--cloud", "--json"], 300)
    if status != PASS:
        return (NOT_CHECKED if status == NOT_CHECKED else PARTIAL), 0.5, f"{name}: {output}"
    unpushed = json.loads(output or "{}")
    message = f"remote {name}: {len(unpushed)} outputs not pushed (`dvc push`)"
    return verdict(0.5 if unpushed else 1.0, message if unpushed else "pushed")


def tracking_uri(ctx: Context) -> str:
    """MLFLOW_TRACKING_URI as the project reads it: environment, then .env, then mlflow.db."""
    uri, env_file = os.environ.get("MLFLOW_TRACKING_URI", ""), ctx.repo / ".env"
    for line in env_file.read_text("utf-8").splitlines() if env_file.is_file() and not uri else []:
        key, _, value = line.partition("=")
        uri = value.strip().strip("'\"") if key.strip() == "MLFLOW_TRACKING_URI" else uri
    return uri or f"sqlite:///{ctx.repo / 'mlflow.db'}"


def sqlite_store(path: Path, check: dict) -> tuple[int, bool]:
    """Active runs of active experiments, and whether the alias names a version."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        runs = db.execute(
            "SELECT COUNT(*) FROM runs r JOIN experiments e ON r.experiment_id = e.experiment_id "
            "WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active'"
        ).fetchone()[0]
        aliases = db.execute(
            "SELECT COUNT(*) FROM registered_model_aliases WHERE name = ? AND alias = ?",
            (check.get("registered_model"), check.get("alias")),
        ).fetchone()[0]
    return runs, aliases > 0


def server_store(uri: str, check: dict) -> tuple[int, bool]:
    """The same from a tracking server's REST API."""

    def call(path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{uri.rstrip('/')}/api/2.0/mlflow/{path}", data=data)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read() or b"{}")

    experiments = call("experiments/search", {"max_results": 1000}).get("experiments", [])
    ids = [experiment["experiment_id"] for experiment in experiments]
    runs = call("runs/search", {"experiment_ids": ids, "max_results": 1000}) if ids else {}
    query = urllib.parse.urlencode({"name": check.get("registered_model"), "alias": check["alias"]})
    try:
        alias = bool(call(f"registered-models/alias?{query}"))
    except urllib.error.HTTPError:
        alias = False
    return len(runs.get("runs", [])), alias


def check_mlflow(ctx: Context, check: dict) -> Result:
    uri, minimum, wanted = tracking_uri(ctx), int(check.get("min_runs", 1)), check.get("alias")
    try:
        if uri.startswith("sqlite:///"):
            path = Path(uri[len("sqlite:///") :])
            if not path.is_file():
                return FAIL, 0.0, f"no MLflow store at {path.name}: run `make pipeline`"
            runs, alias = sqlite_store(path, check)
        elif uri.startswith(("http://", "https://")):
            runs, alias = server_store(uri, check)
        else:
            return NOT_CHECKED, 0.0, f"a {uri.split(':')[0]} tracking store cannot be read here"
    except (sqlite3.Error, OSError, ValueError) as error:
        return NOT_CHECKED, 0.0, f"the MLflow store at {uri} cannot be read: {error}"
    fraction = min(1.0, runs / minimum) / (2 if wanted else 1) + (0.5 if alias and wanted else 0)
    aliased = f"; alias {wanted} {'set' if alias else 'not set'}" if wanted else ""
    return verdict(fraction, f"{runs} runs{aliased}")


def check_json_count(ctx: Context, check: dict) -> Result:
    files, count = sorted(f for f in ctx.repo.glob(check["path"]) if f.is_file()), 0
    for path in files:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return FAIL, 0.0, f"{path.relative_to(ctx.repo)} is not valid JSON"
        for part in str(check["key"]).split("."):
            document = document.get(part) if isinstance(document, dict) else None
        count += len(document) if isinstance(document, (list, dict)) else 0
    if not files:
        return FAIL, 0.0, f"no file matches {check['path']}"
    return verdict(count / int(check["min"]), f"{count} {check['key']} (wanted {check['min']})")


def check_csv_rows(ctx: Context, check: dict) -> Result:
    try:
        with (ctx.repo / check["path"]).open(encoding="utf-8", newline="") as handle:
            values = [row.get(check["column"]) or "" for row in csv.DictReader(handle)]
    except OSError:
        return FAIL, 0.0, f"{check['path']} is missing"
    count = sum(1 for value in values if re.fullmatch(r"[-+]?[\d.]+(?:[eE][-+]?\d+)?", value))
    return verdict(count / int(check["min"]), f"{count} row(s) with a measured {check['column']}")


def check_front_matter(ctx: Context, check: dict) -> Result:
    path = ctx.repo / check["path"]
    parts = path.read_text(encoding="utf-8").split("---", 2) if path.is_file() else []
    try:
        header = yaml.safe_load(parts[1]) if len(parts) == 3 and not parts[0].strip() else {}
    except yaml.YAMLError:
        header = {}
    header = header if isinstance(header, dict) else {}
    return share(check["keys"], [k for k in check["keys"] if not header.get(k)], "not set", "set")


def check_routes(ctx: Context, check: dict) -> Result:
    declared = set()
    for path in ctx.repo.glob(check["sources"]):
        declared |= set(ROUTE.findall(path.read_text(encoding="utf-8", errors="replace")))
    missing = [route for route in check["paths"] if route not in declared]
    return share(check["paths"], missing, "no route for", "declared")


def run_command(ctx: Context, argv: list[str], timeout: float) -> Result:
    """Run a command of the team's environment in its repository (only with --run)."""
    argv = [arg.replace("{venv}", str(ctx.venv)).replace("{repo}", str(ctx.repo)) for arg in argv]
    if not (Path(argv[0]).is_file() if "/" in argv[0] else shutil.which(argv[0])):
        return NOT_CHECKED, 0.0, f"not checked: {Path(argv[0]).name} is missing, run `make setup`"
    if not ctx.run:
        return NOT_CHECKED, 0.0, "not checked: slow, pass --run (`make milestones RUN_CHECKS=1`)"
    env = dict(os.environ, VIRTUAL_ENV=str(ctx.venv.parent))
    env["PATH"] = os.pathsep.join([str(ctx.venv), env.get("PATH", "")])
    try:
        done = subprocess.run(argv, cwd=ctx.repo, env=env, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired:
        return FAIL, 0.0, f"{Path(argv[0]).name} took more than {timeout:.0f} s"
    if done.returncode == 0:
        return PASS, 1.0, done.stdout.strip()
    last = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()][-1:]
    return FAIL, 0.0, f"{Path(argv[0]).name} exited {done.returncode}: {''.join(last)[:200]}"


def check_command(ctx: Context, check: dict) -> Result:
    status, fraction, message = run_command(ctx, check["run"], float(check.get("timeout", 300)))
    return status, fraction, "passed" if status == PASS else message


CHECKS = {
    "filled": check_filled,
    "files": check_files,
    "committed": check_committed,
    "dvc_pipeline": check_dvc_pipeline,
    "dvc_remote": check_dvc_remote,
    "mlflow": check_mlflow,
    "json_count": check_json_count,
    "csv_rows": check_csv_rows,
    "front_matter": check_front_matter,
    "routes": check_routes,
    "command": check_command,
}


def load_spec(path: Path) -> dict:
    """The spec, checked enough that every deliverable can be scored; SpecError otherwise."""
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SpecError(f"cannot read the spec {path}: {error}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("milestones"), list):
        raise SpecError(f"{path}: no `milestones` list")
    for milestone in spec["milestones"]:
        for deliverable in milestone.get("deliverables") or []:
            where = f"{path.name}: {milestone.get('id')}/{deliverable.get('id')}"
            if not isinstance(deliverable.get("points"), (int, float)) or not deliverable.get(
                "checks"
            ):
                raise SpecError(f"{where}: needs `points` and a list of `checks`")
            unknown = [c.get("kind") for c in deliverable["checks"] if c.get("kind") not in CHECKS]
            if unknown:
                raise SpecError(f"{where}: unknown check kind {unknown[0]!r}")
    return spec


def score_deliverable(ctx: Context, deliverable: dict) -> dict:
    """Run a deliverable's checks; its score is its points times their mean fraction."""
    results = []
    for check in deliverable["checks"]:
        try:
            results.append(CHECKS[check["kind"]](ctx, check))
        except (KeyError, TypeError, ValueError) as error:
            raise SpecError(
                f"{deliverable['id']}: check {check['kind']}: bad field {error}"
            ) from None
    statuses = {status for status, _, _ in results}
    fraction = sum(f for _, f, _ in results) / len(results)
    if statuses & {FAIL, PARTIAL}:
        status = PARTIAL if fraction > 0 else FAIL
    else:
        status = NOT_CHECKED if NOT_CHECKED in statuses else PASS
    shown = [m for s, _, m in results if s != PASS] or [m for _, _, m in results]
    shown = list(dict.fromkeys(shown))  # the same message from two checks, once
    return {
        "id": str(deliverable["id"]),
        "title": str(deliverable.get("title", deliverable["id"])),
        "status": status,
        "score": round(deliverable["points"] * fraction, 2),
        "max_score": float(deliverable["points"]),
        "message": "; ".join(m for m in shown if m),
    }


def evaluate(repo: Path, spec_path: Path, run: bool) -> dict:
    spec = load_spec(spec_path)
    ctx = Context(repo, str(spec.get("placeholder", "[More Information Needed]")), run)
    milestones = []
    for milestone in spec["milestones"]:
        deliverables = [score_deliverable(ctx, d) for d in milestone.get("deliverables") or []]
        milestones.append(
            {
                "id": str(milestone["id"]),
                "title": str(milestone.get("title", milestone["id"])),
                "score": round(sum(d["score"] for d in deliverables), 2),
                "max_score": float(sum(d["max_score"] for d in deliverables)),
                "done": all(d["status"] in (PASS, NOT_CHECKED) for d in deliverables),
                "page": milestone.get("page"),
                "skipped": [
                    {key: str(item.get(key, "")) for key in ("id", "title", "reason")}
                    for item in milestone.get("skipped") or []
                ],
                "deliverables": deliverables,
            }
        )
    return {
        "repo": str(repo),
        "spec": str(spec_path),
        "score": round(sum(m["score"] for m in milestones), 2),
        "max_score": float(sum(m["max_score"] for m in milestones)),
        "milestones": milestones,
    }


def deciding(report: dict, until: str | None) -> list[dict]:
    """The milestones that decide the exit status: all, or those up to `until`."""
    ids = [m["id"] for m in report["milestones"]]
    if until is None:
        return report["milestones"]
    if until not in ids:
        raise SpecError(f"--until {until}: the spec has {', '.join(ids)}")
    return report["milestones"][: ids.index(until) + 1]


def classroom(milestones: list[dict]) -> str:
    """GitHub Classroom's grading-reporter result, base64-encoded, with a score per test."""
    status_of = {PASS: "pass", PARTIAL: "fail", FAIL: "fail", NOT_CHECKED: "error"}
    tests = [
        {
            "name": f"{m['id']} {d['title']}",
            "status": status_of[d["status"]],
            "score": d["score"],
            "max_score": d["max_score"],
            "message": d["message"],
            "test_code": f"milestones.yaml: {m['id']} / {d['id']}",
            "filename": "",
            "line_no": 0,
            "duration": 0,
        }
        for m in milestones
        for d in m["deliverables"]
    ]
    statuses = {test["status"] for test in tests}
    status = "fail" if "fail" in statuses else "error" if "error" in statuses else "pass"
    result = {
        "version": 1,
        "status": status,
        "max_score": sum(test["max_score"] for test in tests),
        "tests": tests,
    }
    return base64.b64encode(json.dumps(result).encode("utf-8")).decode("ascii")


def table(report: dict, until: str | None) -> str:
    lines = [f"Milestones of {report['repo']}"]
    rows = [d for m in report["milestones"] for d in [*m["deliverables"], *m["skipped"]]]
    width = min(60, max([len(row["title"]) for row in rows] + [10]))
    for m in report["milestones"]:
        state = "done" if m["done"] else "not done"
        page = f"  ({m['page']})" if m.get("page") else ""
        lines.append(f"\n{m['id']} {m['title']}: {state}, {m['score']:g}/{m['max_score']:g}{page}")
        for d in m["deliverables"]:
            points = f"{d['score']:g}/{d['max_score']:g}"
            title = d["title"][:width].ljust(width)
            lines.append(f"  {d['status']:<11} {title} {points:>7}  {d['message']}")
        for item in m["skipped"]:
            lines.append(
                f"  {'n/a':<11} {item['title'][:width].ljust(width)} {'':>7}  {item['reason']}"
            )
    ratio = report["score"] / report["max_score"] if report["max_score"] else 1.0
    lines.append(f"\nTotal {report['score']:g}/{report['max_score']:g} ({100 * ratio:.0f}%)")
    if until:
        lines.append(f"Milestones up to {until} decide the exit status.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the course milestones' deliverables.")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--spec", type=Path, help="default: <repo>/milestones.yaml")
    parser.add_argument("--until", help="only milestones up to this one decide the exit status")
    parser.add_argument("--json", type=Path, help="write the report as JSON")
    parser.add_argument("--classroom", type=Path, help="write GitHub Classroom's base64 result")
    parser.add_argument("--run", action="store_true", help="also run the commands: tests, lint")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    try:
        if not repo.is_dir():
            raise SpecError(f"--repo {repo} is not a folder")
        report = evaluate(repo, (args.spec or repo / "milestones.yaml").resolve(), args.run)
        decide = deciding(report, args.until)
    except SpecError as error:
        print(f"milestones: {error}", file=sys.stderr)
        return 2
    print(table(report, args.until))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.classroom:
        encoded = classroom(decide)
        args.classroom.parent.mkdir(parents=True, exist_ok=True)
        args.classroom.write_text(encoded + "\n", encoding="ascii")
        if os.environ.get("GITHUB_OUTPUT"):  # the step output Classroom's reporter reads
            with Path(os.environ["GITHUB_OUTPUT"]).open("a", encoding="utf-8") as output:
                output.write(f"result={encoded}\n")
    return 0 if all(m["done"] for m in decide) else 1


if __name__ == "__main__":
    sys.exit(main())
