"""Team repositories: a local path, or a git URL cloned into the cache, and its `.cruft.json`.

Every problem that makes a repository unusable (missing folder, not a git repository, no or a
broken `.cruft.json`, a clone that fails or takes too long) raises ToolError with one line saying
what to do. `.cruft.json` is read as data, never followed: its `template`, `checkout` and
`directory` are only compared with the template the instructor uses (reference.py), and its
answers are checked before any render (answers.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from mlops_template.errors import ToolError
from mlops_template.files import read_text
from mlops_template.git import git, is_repository_root, is_url

# A .cruft.json holds a few answers: anything larger is not one.
RECORD_BYTES = 100_000


@dataclass(frozen=True)
class Team:
    """A team repository ready to compare: where it is and what `.cruft.json` recorded."""

    name: str
    source: str  # the argument as given: a path or a URL
    path: Path  # the work tree (the clone, for a URL)
    record: dict  # the whole `.cruft.json`

    @property
    def answers(self) -> dict:
        """The public answers: what cookiecutter needs to render the same project again."""
        context = self.record["context"]["cookiecutter"]
        return {key: value for key, value in context.items() if not key.startswith("_")}

    @property
    def module(self) -> str:
        return str(self.answers["module_name"])

    @property
    def template(self) -> str:
        """The template source the team's record names (data: never cloned or rendered)."""
        return str(self.record.get("template") or "")

    @property
    def commit(self) -> str | None:
        commit = self.record.get("commit")
        return commit if isinstance(commit, str) and commit else None

    @property
    def skipped(self) -> list[str]:
        """Paths cruft skips (`.cruft.json`'s `skip`): made by the hook, not rendered."""
        skip = self.record.get("skip")
        return [str(path) for path in skip] if isinstance(skip, list) else []


def display_names(sources: list[str]) -> list[str]:
    """A short, unique name per repository: its folder or URL name, numbered when repeated."""
    names, seen = [], {}
    for source in sources:
        if not is_url(source):  # `.` or `team-a/` name the folder itself
            source = Path(source).expanduser().resolve().as_posix()
        base = re.sub(r"\.git$", "", source.rstrip("/").replace(":", "/").split("/")[-1]) or "repo"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


def clone(url: str, cache: Path) -> Path:
    """Clone `url` into the cache, or bring an earlier clone up to date with its remote."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:10]
    name = display_names([url])[0]
    folder = cache / "repos" / f"{name}-{digest}"
    if (folder / ".git").is_dir():
        git("fetch", "--quiet", "--prune", "origin", cwd=folder)
        git("reset", "--quiet", "--hard", "origin/HEAD", cwd=folder)
        return folder
    # Cloned beside the cache's copy, renamed when complete: a clone that fails or times out
    # never leaves half a repository for the next run.
    partial = folder.with_name(f"{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        git("clone", "--quiet", "--", url, str(partial))
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def read_record(folder: Path) -> dict:
    if not (folder / ".cruft.json").exists() and not (folder / ".cruft.json").is_symlink():
        raise ToolError(
            "no .cruft.json: the repository was not generated from the template, "
            "or the file was deleted (restore it from the first commit)"
        )
    text = read_text(folder / ".cruft.json", RECORD_BYTES, ".cruft.json")
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ToolError(f".cruft.json cannot be read: {str(error)[:120]}") from None
    context = record.get("context") if isinstance(record, dict) else None
    context = context.get("cookiecutter") if isinstance(context, dict) else None
    if not isinstance(context, dict) or "module_name" not in context:
        raise ToolError(".cruft.json records no answers (context.cookiecutter.module_name)")
    return record


def open_team(name: str, source: str, cache: Path) -> Team:
    """The team repository named by `source`, checked for everything the commands need."""
    if is_url(source):
        path = clone(source, cache)
    else:
        path = Path(source).expanduser().resolve()
        if not path.is_dir():
            raise ToolError(f"{source} is not a folder")
        if not is_repository_root(path):
            raise ToolError(f"{source} is not a git repository (no .git at its top)")
    return Team(name=name, source=source, path=path, record=read_record(path))
