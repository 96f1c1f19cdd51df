"""The reference project of a team: the template rendered with the team's recorded answers.

The template is found in this order: `--template` (a folder or a git URL), the checkout this
package runs from (`uv run mlops-template` in the template's clone), the `template` recorded in
the team's `.cruft.json`. A URL is cloned bare into the cache. The recorded commit is exported
with `git archive` (no work tree of the template is touched) and rendered by cookiecutter in a
child process, so each commit's own hooks and Jinja extensions are the ones imported. Renders of
a commit are cached by commit and answers; when the commit is unknown, the template's current
files are rendered instead, with a warning, unless exact commits are required.
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
from dataclasses import dataclass
from pathlib import Path

from mlops_template.errors import ToolError
from mlops_template.git import git, has_commit, is_url
from mlops_template.repos import Team

RENDER_SCRIPT = """
import json, sys
from cookiecutter.main import cookiecutter
request = json.load(sys.stdin)
print(cookiecutter(request["template"], no_input=True, extra_context=request["answers"],
                   output_dir=request["output"], config_file=request["config"]))
"""


@dataclass(frozen=True)
class Reference:
    """A rendered reference project, and how it relates to what the team recorded."""

    path: Path
    commit: str | None  # the template commit rendered; None for a template's working tree
    warning: str | None  # set when this is not the team's recorded commit


def running_checkout() -> Path | None:
    """The template clone this package runs from, if it runs from one (not an installed copy)."""
    root = Path(__file__).resolve().parents[2]
    is_template = (root / "cookiecutter.json").is_file() and (root / ".git").exists()
    return root if is_template else None


def without_dvc(path: str) -> str:
    """PATH minus folders holding `dvc`: the render's hook then skips `dvc init` (not source)."""
    folders = [f for f in path.split(os.pathsep) if f and not (Path(f) / "dvc").exists()]
    return os.pathsep.join(folders)


class References:
    """Finds each team's template and renders its reference, caching both for the run."""

    def __init__(self, cache: Path, scratch: Path, template: str | None, exact: bool) -> None:
        self.cache, self.scratch, self.template, self.exact = cache, scratch, template, exact
        self.config = cache / "cookiecutter.yaml"
        self.repositories: dict[str, Path] = {}
        self.renders: dict[tuple[str, str], Path] = {}

    def source(self, team: Team) -> str:
        if self.template:
            return self.template
        checkout = running_checkout()
        if checkout:
            return str(checkout)
        if not team.template:
            raise ToolError(".cruft.json records no template source: pass --template")
        return team.template

    def repository(self, source: str) -> Path:
        """A local folder holding the template's git history (a bare clone for a URL)."""
        if source not in self.repositories:
            if is_url(source):
                digest = hashlib.sha256(source.encode()).hexdigest()[:10]
                folder = self.cache / "templates" / f"clone-{digest}.git"
                if folder.is_dir():
                    git("fetch", "--quiet", "origin", "+refs/heads/*:refs/heads/*", cwd=folder)
                else:
                    folder.parent.mkdir(parents=True, exist_ok=True)
                    git("clone", "--quiet", "--bare", source, str(folder))
            else:
                folder = Path(source).expanduser().resolve()
                if not (folder / "cookiecutter.json").is_file():
                    raise ToolError(
                        f"the template {source} is not a folder with cookiecutter.json: "
                        "pass --template with a clone or URL of the template"
                    )
            self.repositories[source] = folder
        return self.repositories[source]

    def reference(self, team: Team) -> Reference:
        """Render (or reuse) the reference of `team`."""
        source = self.source(team)
        repository = self.repository(source)
        commit, warning = team.commit, None
        if commit is None or not has_commit(repository, commit):
            missing = (
                "records no template commit"
                if commit is None
                else f"template commit {commit[:12]} is not in the history of {source}"
            )
            if self.exact:
                raise ToolError(f"{missing} (pass --template with a clone that has it)")
            commit = git("rev-parse", "HEAD", cwd=repository).strip() if is_url(source) else None
            warning = (
                f"{missing}: compared with the template's current files instead "
                "(fetch the template's history, or pass --template)"
            )
        template = self.export(repository, commit) if commit else repository
        directory = team.record.get("directory")
        if directory:
            template = template / str(directory)
        return Reference(self.render(template, commit, team.answers), commit, warning)

    def export(self, repository: Path, commit: str) -> Path:
        """The template's files at `commit`, exported once into the cache."""
        folder = self.cache / "templates" / commit
        if not folder.is_dir():
            archive = git("archive", "--format=tar", commit, cwd=repository, binary=True)
            partial = folder.with_name(f"{commit}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            # The "data" filter refuses links out of the folder (Python 3.11.4 and later have it).
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(partial, **safe)
            partial.rename(folder)
        return folder

    def render(self, template: Path, commit: str | None, answers: dict) -> Path:
        """The project cookiecutter renders from `template` with `answers`."""
        answers_json = json.dumps(answers, sort_keys=True)
        key = (commit or f"worktree:{template}", answers_json)
        if key in self.renders:
            return self.renders[key]
        digest = hashlib.sha256(answers_json.encode()).hexdigest()[:12]
        if commit:  # a commit never changes: its render is kept between runs
            output = self.cache / "references" / f"{commit[:12]}-{digest}"
        else:
            output = self.scratch / "references" / f"{len(self.renders)}-{digest}"
        done = output / ".rendered"
        if not done.is_file():
            shutil.rmtree(output, ignore_errors=True)
            self.cookiecutter(template, answers, output)
            done.write_text(json.dumps({"commit": commit, "answers": answers}), encoding="utf-8")
        projects = [child for child in output.iterdir() if child.is_dir()]
        self.renders[key] = projects[0]
        return projects[0]

    def cookiecutter(self, template: Path, answers: dict, output: Path) -> None:
        output.mkdir(parents=True)
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
        env = {**os.environ, "PATH": without_dvc(os.environ.get("PATH", ""))}
        try:
            done = subprocess.run(
                [sys.executable, "-c", RENDER_SCRIPT],
                input=json.dumps(request),
                capture_output=True,
                text=True,
                env=env,
                timeout=600,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ToolError("rendering the reference took more than 10 minutes") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            reason = next((line for line in lines if line.startswith("ERROR")), None)
            reason = reason or (lines[-1] if lines else f"exit {done.returncode}")
            raise ToolError(f"the reference cannot be rendered from the recorded answers: {reason}")
