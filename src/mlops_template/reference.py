"""The reference project of a team: the instructor's template rendered with the team's answers.

The template is the instructor's, never the team's: `--template` (a folder or a git URL), else
the checkout this package runs from (`uv run mlops-template` in the template's clone), else the
source this package was installed from (pip and uv record it in the distribution's
`direct_url.json`). What the team's `.cruft.json` records of a template (`template`, `checkout`,
`directory`) is read as data and reported when it differs, never cloned, checked out or rendered.

The team's recorded commit is used when the instructor's template has it in its history (a URL
is cloned bare into the cache); it is exported with `git archive` and rendered by cookiecutter in
a child process, so each commit's own hooks are the ones that run. When the commit is unknown,
the template's current files are rendered instead, with a warning, unless exact commits are
required. The answers are checked first (answers.py): none reaches cookiecutter unchecked.

Renders are cached under a key that covers everything that decides them: the template's source,
its commit (or a digest of its files when there is none), the folder rendered and the answers.
A render is written beside the cache and renamed into place when complete, with a manifest of
its files' digests; a cached render that no longer matches its manifest is rendered again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlops_template import git as git_module
from mlops_template.answers import checked_answers
from mlops_template.errors import ToolError
from mlops_template.git import COMMIT, git, has_commit, is_url
from mlops_template.repos import Team

RENDER_SCRIPT = """
import json, sys
from cookiecutter.main import cookiecutter
request = json.load(sys.stdin)
print(cookiecutter(request["template"], no_input=True, extra_context=request["answers"],
                   output_dir=request["output"], config_file=request["config"]))
"""
# What a template folder holds that is not the template: left out of its digest.
NOT_TEMPLATE = {".git", ".venv", ".tools", "build", "site", "__pycache__", ".pytest_cache",
                ".ruff_cache"}  # fmt: skip
MANIFEST = ".rendered"


@dataclass(frozen=True)
class Reference:
    """A rendered reference project, and how it relates to what the team recorded."""

    path: Path
    commit: str | None  # the template commit rendered; None for a template's working tree
    warning: str | None  # set when this is not the team's recorded commit
    notes: list[str] = field(default_factory=list)  # what the record names that was not followed


def running_checkout() -> Path | None:
    """The template clone this package runs from, if it runs from one (not an installed copy)."""
    root = Path(__file__).resolve().parents[2]
    is_template = (root / "cookiecutter.json").is_file() and (root / ".git").exists()
    return root if is_template else None


def installed_source() -> str | None:
    """Where this package was installed from, as its installer recorded it (PEP 610): a git URL,
    or a local template folder."""
    try:
        recorded = metadata.distribution("mlops-template").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    try:
        direct = json.loads(recorded or "{}")
    except ValueError:
        return None
    url = str(direct.get("url") or "")
    if "vcs_info" in direct:
        return url
    if url.startswith("file://"):
        folder = Path(unquote(urlparse(url).path))
        return str(folder) if (folder / "cookiecutter.json").is_file() else None
    return None


def template_source(given: str | None) -> str:
    """The template every reference is rendered from (see the module's text)."""
    source = given or (str(running_checkout()) if running_checkout() else installed_source())
    if not source:
        raise ToolError(
            "no template: pass --template with a clone or URL of the course's template "
            "(a team's .cruft.json is never followed)"
        )
    return source


def without_dvc(path: str) -> str:
    """PATH minus folders holding `dvc`: the render's hook then skips `dvc init` (not source)."""
    folders = [f for f in path.split(os.pathsep) if f and not (Path(f) / "dvc").exists()]
    return os.pathsep.join(folders)


def tree_digest(folder: Path) -> str:
    """A digest of a template folder's files (for a working tree, which has no commit)."""
    digest = hashlib.sha256()
    for current, subfolders, files in os.walk(folder):
        subfolders[:] = sorted(s for s in subfolders if s not in NOT_TEMPLATE)
        for name in sorted(files):
            path = Path(current) / name
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def files_digest(folder: Path) -> dict[str, str]:
    """Each file of a render and its sha256."""
    found = {}
    for current, _, files in os.walk(folder):
        for name in files:
            path = Path(current) / name
            relative = path.relative_to(folder).as_posix()
            if relative != MANIFEST:
                found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return dict(sorted(found.items()))


class References:
    """Renders each team's reference from the instructor's template, caching the renders."""

    def __init__(self, cache: Path, scratch: Path, template: str | None, exact: bool) -> None:
        self.cache, self.scratch, self.exact = cache, scratch, exact
        self.source = template_source(template)
        self.config = cache / "cookiecutter.yaml"
        self.renders: dict[str, Path] = {}
        self._repository: Path | None = None

    def repository(self) -> Path:
        """A local folder holding the template's git history (a bare clone for a URL)."""
        if self._repository is None:
            source = self.source
            if is_url(source):
                digest = hashlib.sha256(source.encode()).hexdigest()[:10]
                folder = self.cache / "templates" / f"clone-{digest}.git"
                if folder.is_dir():
                    git("fetch", "--quiet", "origin", "+refs/heads/*:refs/heads/*", cwd=folder)
                else:
                    folder.parent.mkdir(parents=True, exist_ok=True)
                    git("clone", "--quiet", "--bare", "--", source, str(folder))
            else:
                folder = Path(source).expanduser().resolve()
                if not (folder / "cookiecutter.json").is_file():
                    raise ToolError(
                        f"the template {source} is not a folder with cookiecutter.json: "
                        "pass --template with a clone or URL of the template"
                    )
            self._repository = folder
        return self._repository

    def notes(self, team: Team) -> list[str]:
        """What the team's record names that differs from the template used: reported only."""
        found = []
        if team.template and team.template.rstrip("/") != self.source.rstrip("/"):
            found.append(f".cruft.json names the template {team.template[:120]!r}: not followed")
        for key in ("directory", "checkout"):
            value = team.record.get(key)
            if value:
                found.append(f".cruft.json sets {key} {str(value)[:120]!r}: not followed")
        return found

    def reference(self, team: Team) -> Reference:
        """Render (or reuse) the reference of `team`."""
        repository = self.repository()
        commit, warning = team.commit, None
        if commit is None or not COMMIT.match(commit) or not has_commit(repository, commit):
            missing = (
                "records no template commit"
                if commit is None
                else f"template commit {commit[:12]} is not in the history of the template"
            )
            if self.exact:
                raise ToolError(f"{missing} (pass --template with a clone that has it)")
            commit = None  # a folder's current files; a URL's newest commit
            if is_url(self.source):
                commit = git("rev-parse", "HEAD", cwd=repository).strip()
            warning = (
                f"{missing}: compared with the template's current files instead "
                "(fetch the template's history, or pass --template)"
            )
        template = self.export(repository, commit) if commit else repository
        answers = checked_answers(team.answers, template)
        return Reference(self.render(template, commit, answers), commit, warning, self.notes(team))

    def export(self, repository: Path, commit: str) -> Path:
        """The template's files at `commit`, exported once into the cache."""
        folder = self.cache / "templates" / commit
        if not folder.is_dir():
            archive = git("archive", "--format=tar", commit, cwd=repository, binary=True)
            folder.parent.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(prefix=f"{commit}.", dir=folder.parent))
            try:
                # The "data" filter refuses links out of the folder (Python 3.11.4 and later).
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                    tar.extractall(partial, **safe)
                partial.rename(folder)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
        return folder

    def key(self, template: Path, commit: str | None, answers: dict) -> str:
        """The cache key of a render: everything that decides it."""
        content = commit or tree_digest(template)
        identity = {"source": self.source, "content": content, "directory": "", "answers": answers}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

    def render(self, template: Path, commit: str | None, answers: dict) -> Path:
        """The project cookiecutter renders from `template` with `answers`, from the cache when
        a verified render of the same key is there."""
        key = self.key(template, commit, answers)
        if key in self.renders:
            return self.renders[key]
        output = self.cache / "references" / key[:24]
        if not self.verified(output, key):
            output.parent.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(prefix=f"{key[:24]}.", dir=output.parent))
            try:
                self.cookiecutter(template, answers, partial)
                record = {"key": key, "commit": commit, "files": files_digest(partial)}
                (partial / MANIFEST).write_text(json.dumps(record), encoding="utf-8")
                shutil.rmtree(output, ignore_errors=True)
                partial.rename(output)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
        projects = [child for child in output.iterdir() if child.is_dir()]
        self.renders[key] = projects[0]
        return projects[0]

    def verified(self, output: Path, key: str) -> bool:
        """Whether `output` holds a complete render of `key`, unchanged since it was made."""
        try:
            record = json.loads((output / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return record.get("key") == key and record.get("files") == files_digest(output)

    def cookiecutter(self, template: Path, answers: dict, output: Path) -> None:
        if not self.config.is_file():
            self.config.parent.mkdir(parents=True, exist_ok=True)
            self.config.write_text(
                f"cookiecutters_dir: {json.dumps(str(self.cache / 'cookiecutters'))}\n"
                f"replay_dir: {json.dumps(str(self.cache / 'replay'))}\n",
                encoding="utf-8",
            )
        request = {
            "template": str(template),
            "answers": answers,
            "output": str(output),
            "config": str(self.config),
        }
        env = {**git_module.environment(), "PATH": without_dvc(os.environ.get("PATH", ""))}
        try:
            done = subprocess.run(
                [sys.executable, "-c", RENDER_SCRIPT],
                input=json.dumps(request),
                capture_output=True,
                text=True,
                env=env,
                timeout=max(git_module.TIMEOUT, 60),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ToolError("rendering the reference took too long (see --timeout)") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            reason = next((line for line in lines if line.startswith("ERROR")), None)
            reason = reason or (lines[-1] if lines else f"exit {done.returncode}")
            raise ToolError(f"the reference cannot be rendered from the recorded answers: {reason}")
