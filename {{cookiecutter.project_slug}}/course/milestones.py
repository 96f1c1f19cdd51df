"""Check a team repository against the course milestones: `make milestones`.

This file is the course's equipment, not the team's code: it lives in `course/` with the spec
(`course/milestones.yaml`) and its tests, and imports nothing of the project's package. The
contract (the instructor's tools run this very file on many repositories, so keep it):

- One file, standard library and PyYAML only: it runs as `python course/milestones.py` inside
  the project and as `python path/to/milestones.py --repo PATH` from another checkout with another
  Python (3.9 or later). One file holds every check kind so that it can be copied alone.
- The repository is untrusted input (an instructor checks many teams' repositories): the checker
  only reads it. Files are read through `Context.read`, which refuses symlinks, anything but a
  regular file and files over MAX_BYTES; git runs through `Context.git`, with the repository's
  own configuration unable to run anything (no fsmonitor, hooks, pager, ssh command, filters or
  text conversion; no GIT_* variable from the environment); nothing is ever fetched from the
  network and no `.env` is read. Only `--run` executes the team's code (its tests and linters,
  from `<repo>/.venv/bin`): do that in a throwaway container or VM.
- CLI: `--repo PATH` (default: the project holding this file), `--spec FILE` (default
  `<repo>/course/milestones.yaml`; an instructor passes the reference's), `--until M3` (only
  milestones up to M3 decide the exit status), `--json FILE`, `--classroom FILE`, `--run` (also
  run the `command` checks: tests, lint; they are "not checked" without it).
- Output: a table on stdout. Exit 0 when every deliverable of the deciding milestones passed, 1
  otherwise, 2 when the spec or the arguments are invalid. A milestone is done only when every
  deliverable passed: "not checked" is not done.
- JSON (`--json`): {"repo", "spec", "score", "max_score", "milestones": [{"id", "title", "score",
  "max_score", "done", "skipped": [{"id", "title", "reason"}], "deliverables": [{"id", "title",
  "status": "pass" | "partial" | "fail" | "not checked", "deleted", "score", "max_score",
  "message"}]}]}. Scores are whole points; `deleted`: a file the deliverable needs is not there
  at all (as opposed to there but unfinished). A check on a file a command makes (`made_by`)
  reports it as not made yet, never as deleted.
- GitHub Classroom (`--classroom`): base64 of {"version": 1, "status", "max_score", "tests":
  [{"name", "status", "score", "max_score", "message", "test_code", "filename", "line_no",
  "duration"}]}, one test per deliverable of the deciding milestones, with partial scores. In a
  CI step (GITHUB_OUTPUT set) it is also the step's output `result`: the grading reporter reads
  each runner's result from the variable `<RUNNER>_RESULTS`, so give the step an id
  (`milestones`), pass its `result` output to the reporter as `MILESTONES_RESULTS`, and list
  `milestones` in `runners`.

The spec (milestones.yaml) lists milestones, each with deliverables worth `points`; a
deliverable's score is its points times the mean of its checks' fractions, rounded down to whole
points. A check that cannot read the team's file (damaged, a link, too large) fails with the
reason; only a bad spec stops the checker. Check kinds:

- filled {path, placeholders}: the file exists; fraction of the placeholders it had when
  generated (spec `placeholder`) that are gone.
- files {paths}: each glob matches at least one file.
- committed {paths}: each path is tracked by git and has no uncommitted change.
- dvc_pipeline {stages}: dvc.yaml defines the stages; dvc.lock records them and is committed.
- dvc_remote {}: a default remote is configured, and the cached outputs of dvc.lock (and of
  `.dvc` files) are in it (a folder remote is read directly; another needs `--run`).
- tracking {registered_model, alias}: what the repository holds of MLflow tracking, which a clone
  has without the MLflow store: reports/promotion.json names the champion (registered version,
  run id) that `promote` set as `alias`, the model card names that run, dvc.lock records the
  promote stage; and, where the store is in the project (mlflow.db: the team's own machine), it
  knows the champion's run and the alias names it.
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
import fnmatch
import io
import json
import math
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import yaml

PASS, PARTIAL, FAIL, NOT_CHECKED = "pass", "partial", "fail", "not checked"
# Files the checker reads are small: anything larger is refused, never read whole.
MAX_BYTES = 5 * 1024 * 1024
# Every git call is bounded, as a hostile repository could make one run for ever.
GIT_TIMEOUT = 60
# A repository's own git configuration cannot run anything through these: each key that can run
# a command or a program on a read, set to nothing (`-c` outranks the repository's config).
GIT_SAFETY = [
    "-c", "core.fsmonitor=false",
    "-c", f"core.hooksPath={os.devnull}",
    "-c", "core.pager=cat",
    "-c", "core.sshCommand=false",
    "-c", "core.askPass=true",
    "-c", "diff.external=",
    "-c", "protocol.allow=never",
]  # fmt: skip


class Result(NamedTuple):
    """A check's verdict: its status, the fraction of its credit in [0, 1], why; `deleted`: a
    file it needs is not there at all."""

    status: str
    fraction: float
    message: str
    deleted: bool = False


ROUTE = re.compile(
    r"\.(?:get|post|put|patch|delete|head|options|route|api_route|add_route|add_api_route)"
    r"\(\s*[\"'](/[^\"']*)[\"']"
)


class SpecError(Exception):
    """The spec or the arguments are invalid."""


class UnreadableError(Exception):
    """A file of the repository cannot be read safely: missing, a link, not a file, too large."""


class Context:
    """The repository under check and how to read it."""

    def __init__(self, repo: Path, placeholder: str, run: bool) -> None:
        self.repo, self.placeholder, self.run = repo, placeholder, run
        self.venv = repo / ".venv" / "bin"

    def path(self, relative: str) -> Path:
        """The regular file at `relative`, never through a link; UnreadableError otherwise."""
        path = self.repo
        for part in Path(relative).parts:
            if part in ("..", "/"):
                raise UnreadableError(f"{relative} is outside the repository")
            path = path / part
            if path.is_symlink():
                raise UnreadableError(f"{relative} is a symbolic link: not followed")
        try:
            info = path.lstat()
        except OSError:
            raise UnreadableError(f"{relative} is missing") from None
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableError(f"{relative} is not a regular file")
        if info.st_size > MAX_BYTES:
            raise UnreadableError(f"{relative} is larger than {MAX_BYTES // 2**20} MB: not read")
        return path

    def exists(self, relative: str) -> bool:
        try:
            self.path(relative)
        except UnreadableError:
            return False
        return True

    def read(self, relative: str) -> str:
        """The text of a regular file of the repository (see `path`)."""
        try:
            return self.path(relative).read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            raise UnreadableError(f"{relative} cannot be read: {error.strerror}") from None

    def glob(self, pattern: str) -> list[str]:
        """The repository's regular files (relative paths) matching `pattern` (`*` within a
        folder, `**` across folders), without going through links or into .git and .venv."""
        wanted = pattern.split("/")
        found = []
        for folder, subfolders, files in os.walk(self.repo):
            subfolders[:] = [
                name
                for name in subfolders
                if name not in (".git", ".venv", ".dvc") and not (Path(folder) / name).is_symlink()
            ]
            base = Path(folder).relative_to(self.repo).parts
            for name in files:
                relative = "/".join([*base, name])
                if glob_match([*base, name], wanted) and self.exists(relative):
                    found.append(relative)
        return sorted(found)

    def git(self, *args: str, binary: bool = False) -> subprocess.CompletedProcess | None:
        """git in the repository, none of its configuration able to run a command; None when
        git is missing or takes too long."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
        env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0")
        try:
            return subprocess.run(
                ["git", *GIT_SAFETY, *args],
                cwd=self.repo,
                capture_output=True,
                text=not binary,
                env=env,
                timeout=GIT_TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None


def glob_match(parts: list[str], pattern: list[str]) -> bool:
    """Whether path parts match pattern parts: `**` is any number of parts, the others are
    fnmatch patterns of one part each."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(glob_match(parts[start:], rest) for start in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and glob_match(parts[1:], rest)


def verdict(fraction: float, message: str, deleted: bool = False) -> Result:
    fraction = max(0.0, min(1.0, fraction))
    status = PASS if fraction >= 1 else PARTIAL if fraction > 0 else FAIL
    return Result(status, fraction, message, deleted)


def share(wanted: list, missing: list, what: str, done: str, deleted: bool = False) -> Result:
    """The verdict on a list of things of which `missing` are missing."""
    message = f"{what}: {', '.join(map(str, missing))}" if missing else done
    return verdict(1 - len(missing) / len(wanted), message, deleted=deleted and bool(missing))


def absent(check: dict, what: str) -> Result:
    """No credit for a file that is not there: deleted, or not made yet by its command."""
    if check.get("made_by"):
        return Result(FAIL, 0.0, f"{what} is not made yet (`{check['made_by']}` makes it)")
    return Result(FAIL, 0.0, f"{what} is missing (deleted)", deleted=True)


def read_yaml(ctx: Context, relative: str) -> dict:
    """A YAML mapping of the repository; {} when it is missing; UnreadableError when damaged."""
    if not os.path.lexists(ctx.repo / relative):
        return {}
    try:
        document = yaml.safe_load(ctx.read(relative))
    except yaml.YAMLError as error:
        raise UnreadableError(f"{relative} is not valid YAML: {one_line(error)}") from None
    return document if isinstance(document, dict) else {}


def one_line(error: object, limit: int = 160) -> str:
    return " ".join(str(error).split())[:limit]


def mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def listing(value: object) -> list:
    return value if isinstance(value, list) else []


def check_filled(ctx: Context, check: dict) -> Result:
    relative, total = check["path"], int(check["placeholders"])
    if not os.path.lexists(ctx.repo / relative):
        return absent(check, relative)
    left = ctx.read(relative).count(ctx.placeholder)
    message = f"{left} of {total} placeholders left in {relative}"
    return verdict(1 - left / max(total, left, 1), message if left else "filled")


def check_files(ctx: Context, check: dict) -> Result:
    missing = [p for p in check["paths"] if not ctx.glob(p)]
    if check.get("made_by") and missing:
        return absent(check, ", ".join(missing))
    return share(check["paths"], missing, "missing", "present", deleted=True)


def uncommitted(ctx: Context, relative: str) -> str | None:
    """None when `relative` is tracked by git and its file is the committed one, else what is
    wrong. The file is compared with HEAD's blob here, not by `git status`, which would run the
    clean filters a repository's configuration names."""
    tracked = ctx.git("ls-files", "--error-unmatch", "--", relative)
    if tracked is None:
        return "git is not installed or took too long"
    if tracked.returncode:
        return f"{relative} is not committed"
    committed = ctx.git("cat-file", "blob", f"HEAD:{relative}", binary=True)
    if committed is None or committed.returncode:
        return f"{relative} is not committed"
    try:
        current = ctx.path(relative).read_bytes()
    except (UnreadableError, OSError) as error:
        return str(error)
    return f"{relative} has uncommitted changes" if current != committed.stdout else None


def check_committed(ctx: Context, check: dict) -> Result:
    problems = [p for p in (uncommitted(ctx, path) for path in check["paths"]) if p]
    return verdict(1 - len(problems) / len(check["paths"]), "; ".join(problems) or "committed")


def check_dvc_pipeline(ctx: Context, check: dict) -> Result:
    wanted = list(check["stages"])
    defined = mapping(read_yaml(ctx, "dvc.yaml").get("stages"))
    locked = mapping(read_yaml(ctx, "dvc.lock").get("stages"))
    problems = [f"{s} is not in dvc.yaml" for s in wanted if s not in defined]
    problems += [f"{s} never ran (not in dvc.lock)" for s in wanted if s not in locked]
    lock = uncommitted(ctx, "dvc.lock") if locked else "no dvc.lock"
    problems += [f"{lock}: run `make pipeline`, then commit"] if lock else []
    return verdict(1 - len(problems) / (2 * len(wanted) + 1), "; ".join(problems) or "committed")


def default_remote(ctx: Context) -> tuple[str | None, str | None]:
    """The default DVC remote's name and URL; a relative folder is resolved against .dvc/."""
    config = configparser.ConfigParser(interpolation=None)
    for relative in (".dvc/config", ".dvc/config.local"):
        if os.path.lexists(ctx.repo / relative):
            try:
                config.read_string(ctx.read(relative))
            except configparser.Error as error:
                raise UnreadableError(
                    f"{relative} is not a DVC config: {one_line(error)}"
                ) from None
    name = config.get("core", "remote", fallback=None)
    url = config.get(f"'remote \"{name}\"'", "url", fallback=None) if name else None
    if url and "://" not in url:
        url = os.path.normpath(ctx.repo / ".dvc" / url)
    return name, url


def outputs(stage: object) -> list:
    """A dvc.yaml stage's outputs, metrics and plots, whatever their spelling."""
    return [o for key in ("outs", "metrics", "plots") for o in listing(mapping(stage).get(key))]


def cached_hashes(ctx: Context) -> set[str]:
    """md5 of what DVC caches: dvc.lock's outputs but those `cache: false`, and `.dvc` files."""
    uncached = set()
    for stage in mapping(read_yaml(ctx, "dvc.yaml").get("stages")).values():
        for out in outputs(stage):
            if any(mapping(s).get("cache") is False for s in mapping(out).values()):
                uncached |= set(mapping(out))
    locked = mapping(read_yaml(ctx, "dvc.lock").get("stages")).values()
    outs = [o for s in locked for o in outputs(s) if mapping(o).get("path") not in uncached]
    outs += [o for f in ctx.glob("**/*.dvc") for o in listing(read_yaml(ctx, f).get("outs"))]
    return {str(o["md5"]) for o in map(mapping, outs) if o.get("md5")}


def check_dvc_remote(ctx: Context, check: dict) -> Result:
    name, url = default_remote(ctx)
    hashes = cached_hashes(ctx)
    if not url:
        return Result(FAIL, 0.0, "no default DVC remote: `dvc remote add --default <name> <url>`")
    if not hashes:
        return Result(PARTIAL, 0.5, f"remote {name} set; nothing to push yet: run `make pipeline`")
    if "://" not in url:  # a folder: look for each hash where DVC 3 stores it
        store = Path(url) / "files" / "md5"
        missing = [h for h in hashes if not (store / h[:2] / h[2:]).exists()]
        message = f"remote {name}: {len(missing)} of {len(hashes)} outputs not pushed (`dvc push`)"
        return verdict(1 - 0.5 * len(missing) / len(hashes), message if missing else "pushed")
    status, _, output, _ = run_command(ctx, ["{venv}/dvc", "status", "--cloud", "--json"], 300)
    if status != PASS:
        return Result(NOT_CHECKED if status == NOT_CHECKED else PARTIAL, 0.5, f"{name}: {output}")
    unpushed = json.loads(output or "{}")
    message = f"remote {name}: {len(unpushed)} outputs not pushed (`dvc push`)"
    return verdict(0.5 if unpushed else 1.0, message if unpushed else "pushed")


def check_tracking(ctx: Context, check: dict) -> Result:
    """MLflow tracking, from what the repository holds (see the module's text)."""
    alias = check.get("alias", "champion")
    promotion = {}
    if os.path.lexists(ctx.repo / "reports" / "promotion.json"):
        try:
            promotion = mapping(json.loads(ctx.read("reports/promotion.json")))
        except ValueError:
            raise UnreadableError("reports/promotion.json is not valid JSON") from None
    champion = mapping(promotion.get("champion_after"))
    run_id, version = str(champion.get("run_id") or ""), champion.get("version")
    card = ctx.read("docs/model-card.md") if ctx.exists("docs/model-card.md") else ""
    promoted = "promote" in mapping(read_yaml(ctx, "dvc.lock").get("stages"))
    evidence = {
        f"reports/promotion.json names the {alias} (a registered version and its run)": bool(
            run_id and version
        ),
        "the model card names the champion's MLflow run": bool(run_id) and run_id in card,
        "dvc.lock records the promote stage": promoted,
    }
    if ctx.exists("mlflow.db"):  # the team's own machine: the store is here too
        evidence[f"mlflow.db knows that run and its {alias} alias"] = store_agrees(
            ctx.path("mlflow.db"), check.get("registered_model"), alias, run_id
        )
    missing = [what for what, held in evidence.items() if not held]
    message = "not shown: " + "; ".join(missing) if missing else f"champion run {run_id[:12]}"
    return verdict(1 - len(missing) / len(evidence), message)


def store_agrees(path: Path, model: object, alias: str, run_id: str) -> bool:
    """Whether the SQLite MLflow store has the run and names its version with `alias`."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            found = db.execute(
                "SELECT COUNT(*) FROM registered_model_aliases a JOIN model_versions v "
                "ON a.name = v.name AND a.version = v.version "
                "WHERE a.name = ? AND a.alias = ? AND v.run_id = ?",
                (str(model), alias, run_id),
            ).fetchone()[0]
    except sqlite3.Error:
        return False
    return found > 0


def check_json_count(ctx: Context, check: dict) -> Result:
    files, count = ctx.glob(check["path"]), 0
    for relative in files:
        try:
            document = json.loads(ctx.read(relative))
        except (ValueError, RecursionError):
            return Result(FAIL, 0.0, f"{relative} is not valid JSON")
        for part in str(check["key"]).split("."):
            document = document.get(part) if isinstance(document, dict) else None
        count += len(document) if isinstance(document, (list, dict)) else 0
    if not files:
        return absent(check, f"a file matching {check['path']}")
    return verdict(count / int(check["min"]), f"{count} {check['key']} (wanted {check['min']})")


def check_csv_rows(ctx: Context, check: dict) -> Result:
    relative = check["path"]
    if not os.path.lexists(ctx.repo / relative):
        return absent(check, relative)
    table = csv.DictReader(io.StringIO(ctx.read(relative)))
    values = [str(row.get(check["column"]) or "") for row in table]
    count = sum(1 for value in values if re.fullmatch(r"[-+]?[\d.]+(?:[eE][-+]?\d+)?", value))
    rows_word = "row" if count == 1 else "rows"
    return verdict(
        count / int(check["min"]), f"{count} {rows_word} with a measured {check['column']}"
    )


def check_front_matter(ctx: Context, check: dict) -> Result:
    relative = check["path"]
    if not os.path.lexists(ctx.repo / relative):
        return absent(check, relative)
    parts = ctx.read(relative).split("---", 2)
    try:
        header = yaml.safe_load(parts[1]) if len(parts) == 3 and not parts[0].strip() else {}
    except yaml.YAMLError:
        header = {}
    header = mapping(header)
    return share(check["keys"], [k for k in check["keys"] if not header.get(k)], "not set", "set")


def check_routes(ctx: Context, check: dict) -> Result:
    declared = set()
    for relative in ctx.glob(check["sources"]):
        declared |= set(ROUTE.findall(ctx.read(relative)))
    missing = [route for route in check["paths"] if route not in declared]
    return share(check["paths"], missing, "no route for", "declared")


def run_command(ctx: Context, argv: list[str], timeout: float) -> Result:
    """Run a command of the team's environment in its repository (only with --run): the
    team's code runs, so do this in a throwaway container or VM for a repository you do not
    trust."""
    argv = [arg.replace("{venv}", str(ctx.venv)).replace("{repo}", str(ctx.repo)) for arg in argv]
    if not (Path(argv[0]).is_file() if "/" in argv[0] else shutil.which(argv[0])):
        message = f"not checked: {Path(argv[0]).name} is missing, run `make setup`"
        return Result(NOT_CHECKED, 0.0, message)
    if not ctx.run:
        message = "not checked: slow, pass --run (`make milestones RUN_CHECKS=1`)"
        return Result(NOT_CHECKED, 0.0, message)
    env = dict(os.environ, VIRTUAL_ENV=str(ctx.venv.parent))
    env["PATH"] = os.pathsep.join([str(ctx.venv), env.get("PATH", "")])
    try:
        done = subprocess.run(argv, cwd=ctx.repo, env=env, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired:
        return Result(FAIL, 0.0, f"{Path(argv[0]).name} took more than {timeout:.0f} s")
    if done.returncode == 0:
        return Result(PASS, 1.0, done.stdout.strip())
    last = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()][-1:]
    message = f"{Path(argv[0]).name} exited {done.returncode}: {''.join(last)[:200]}"
    return Result(FAIL, 0.0, message)


def check_command(ctx: Context, check: dict) -> Result:
    result = run_command(ctx, check["run"], float(check.get("timeout", 300)))
    return result._replace(message="passed") if result.status == PASS else result


CHECKS = {
    "filled": check_filled,
    "files": check_files,
    "committed": check_committed,
    "dvc_pipeline": check_dvc_pipeline,
    "dvc_remote": check_dvc_remote,
    "tracking": check_tracking,
    "json_count": check_json_count,
    "csv_rows": check_csv_rows,
    "front_matter": check_front_matter,
    "routes": check_routes,
    "command": check_command,
}
# The fields each check kind needs in the spec.
FIELDS = {
    "filled": ("path", "placeholders"),
    "files": ("paths",),
    "committed": ("paths",),
    "dvc_pipeline": ("stages",),
    "dvc_remote": (),
    "tracking": (),
    "json_count": ("path", "key", "min"),
    "csv_rows": ("path", "column", "min"),
    "front_matter": ("path", "keys"),
    "routes": ("sources", "paths"),
    "command": ("run",),
}


def load_spec(path: Path) -> dict:
    """The spec, checked enough that every deliverable can be scored; SpecError otherwise."""
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SpecError(f"cannot read the spec {path}: {one_line(error)}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("milestones"), list):
        raise SpecError(f"{path}: no `milestones` list")
    for milestone in spec["milestones"]:
        for deliverable in milestone.get("deliverables") or []:
            where = f"{path.name}: {milestone.get('id')}/{deliverable.get('id')}"
            checks = deliverable.get("checks")
            if not isinstance(deliverable.get("points"), (int, float)) or not checks:
                raise SpecError(f"{where}: needs `points` and a list of `checks`")
            for check in checks:
                kind = check.get("kind") if isinstance(check, dict) else None
                if kind not in CHECKS:
                    raise SpecError(f"{where}: unknown check kind {kind!r}")
                missing = [field for field in FIELDS[kind] if field not in check]
                if missing:
                    raise SpecError(f"{where}: check {kind} needs {', '.join(missing)}")
    return spec


def run_check(ctx: Context, check: dict) -> Result:
    """One check; what the repository holds can make it fail, never stop the checker."""
    try:
        return CHECKS[check["kind"]](ctx, check)
    except UnreadableError as error:
        return Result(FAIL, 0.0, str(error))
    except Exception as error:  # a damaged file of the team's, whatever it breaks in here
        return Result(FAIL, 0.0, f"cannot check: {type(error).__name__}: {one_line(error)}")


def score_deliverable(ctx: Context, deliverable: dict) -> dict:
    """Run a deliverable's checks; its score is its points times their mean fraction, in whole
    points rounded down (full points only when every check passed)."""
    results = [run_check(ctx, check) for check in deliverable["checks"]]
    statuses = {result.status for result in results}
    fraction = sum(result.fraction for result in results) / len(results)
    if statuses & {FAIL, PARTIAL}:
        status = PARTIAL if fraction > 0 else FAIL
    else:
        status = NOT_CHECKED if NOT_CHECKED in statuses else PASS
    shown = [r.message for r in results if r.status != PASS] or [r.message for r in results]
    shown = list(dict.fromkeys(shown))  # the same message from two checks, once
    points = deliverable["points"]
    return {
        "id": str(deliverable["id"]),
        "title": str(deliverable.get("title", deliverable["id"])),
        "status": status,
        "deleted": any(result.deleted for result in results),
        "score": points if status == PASS else math.floor(points * fraction + 1e-9),
        "max_score": points,
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
                "score": sum(d["score"] for d in deliverables),
                "max_score": sum(d["max_score"] for d in deliverables),
                "done": all(d["status"] == PASS for d in deliverables),
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
        "score": sum(m["score"] for m in milestones),
        "max_score": sum(m["max_score"] for m in milestones),
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
        unchecked = sum(d["status"] == NOT_CHECKED for d in m["deliverables"])
        state = "done" if m["done"] else "not done"
        state += f" ({unchecked} not checked)" if unchecked and not m["done"] else ""
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
    parser.add_argument("--spec", type=Path, help="default: <repo>/course/milestones.yaml")
    parser.add_argument("--until", help="only milestones up to this one decide the exit status")
    parser.add_argument("--json", type=Path, help="write the report as JSON")
    parser.add_argument("--classroom", type=Path, help="write GitHub Classroom's base64 result")
    parser.add_argument("--run", action="store_true", help="also run the commands: tests, lint")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    try:
        if not repo.is_dir():
            raise SpecError(f"--repo {repo} is not a folder")
        spec = args.spec or repo / "course" / "milestones.yaml"
        report = evaluate(repo, spec.resolve(), args.run)
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
