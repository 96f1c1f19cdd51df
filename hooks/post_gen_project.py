"""Finish a freshly rendered project.

1. Keep the chosen task's files: `<name>.<task>.<ext>` is the `<task>` version of
   `<name>.<ext>` (the first task's, `tabular`, is the plain file).
   Remove the optional parts that the answers switch off (whole files and folders), then any
   folder left empty.
2. Record the answers in `.cruft.json` (no absolute paths) so `cruft check|diff|update` work.
3. `git init`, `dvc init` with analytics off and the default remote, and an initial commit, each
   only where the tool is available; otherwise a note says what to run later.

Cookiecutter renders this file with Jinja; the only template expression is the JSON of the answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

# Switch -> paths (relative to the project, {module} = the package) that exist only when the
# switch is on.
OPTIONAL_PARTS = {
    "use_github_actions": [".github"],
    "use_docs_site": ["mkdocs.yml"],
    "use_api": [
        "{module}/api",
        "tests/api",
        "tests/served.py",
        "benchmarks/serving.py",
        "benchmarks/servers.py",
        "benchmarks/report.py",
        "loadtests",
        "ui",
    ],
    "use_redis_cache": [
        "{module}/api/cache.py",
        "tests/api/test_api_cache.py",
        "deploy/k8s/base/redis-deployment.yaml",
        "deploy/k8s/base/redis-service.yaml",
    ],
    "use_explain_api": [
        "{module}/api/explain.py",
        "tests/api/test_explain_endpoint.py",
    ],
    "use_docker": [
        "Dockerfile",
        ".dockerignore",
        "compose.yaml",
        "ui/Dockerfile",
        "ui/Dockerfile.dockerignore",
        "deploy/container-structure-test.yaml",
        ".github/workflows/release.yml",
    ],
    "use_kubernetes": ["deploy/k8s"],
    "use_monitoring": [
        "{module}/monitoring",
        "tests/monitoring",
        "tests/monitored.py",
        "tests/api/test_metrics.py",
        "tests/api/test_metrics_server.py",
        "tests/api/test_prediction_log.py",
        "deploy/prometheus",
        "deploy/grafana",
        ".github/workflows/drift.yml",
    ],
}
# The tasks but the first: a file `<name>.<task>.<ext>` is that task's version of `<name>.<ext>`.
TASK_VARIANTS = ("text", "image")
REMOTE_TEMPLATE_PREFIXES = ("https://", "http://", "git@", "ssh://", "git+", "file://")
ABBREVIATIONS = {
    "gh:": "https://github.com/{}.git",
    "gl:": "https://gitlab.com/{}.git",
    "bb:": "https://bitbucket.org/{}",
}


def paths_to_remove(answers: dict) -> list[str]:
    """Relative paths of the parts the answers switch off, deepest first.

    Deepest first, so a file inside a folder that is also switched off (the Redis cache inside
    the API) is removed before its folder, and every listed path still exists when its turn comes.
    """
    removed = [
        path.format(module=answers["module_name"])
        for switch, paths in OPTIONAL_PARTS.items()
        if not answers[switch]
        for path in paths
    ]
    if answers["open_source_license"] == "none":
        removed.append("LICENSE")
    return sorted(removed, key=lambda path: -path.count("/"))


def choose_task_files(project: Path, task: str) -> None:
    """Put the `task` version of each file that has one in place of the plain file; remove the
    versions of the other tasks."""
    for path in sorted(project.rglob("*.*.*")):
        stem, variant, extension = path.name.rsplit(".", 2)
        if variant not in TASK_VARIANTS or not path.is_file():
            continue
        if variant == task:
            path.replace(path.with_name(f"{stem}.{extension}"))
        else:
            path.unlink()


def remove_parts(project: Path, relative_paths: list[str]) -> None:
    for relative in relative_paths:
        path = project / relative
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:  # a stale entry in OPTIONAL_PARTS is a template bug: fail loudly
            raise FileNotFoundError(f"optional part {relative!r} is not in the rendered project")


def remove_empty_folders(project: Path) -> None:
    for folder, _subfolders, _files in sorted(os.walk(project), key=lambda w: -len(w[0])):
        path = Path(folder)
        if path != project and ".git" not in path.parts and not any(path.iterdir()):
            path.rmdir()


def expand_template_source(template: str) -> str:
    for prefix, pattern in ABBREVIATIONS.items():
        if template.startswith(prefix):
            return pattern.format(template[len(prefix) :])
    return template


def run(*command: str, cwd: Path | None = None) -> str | None:
    """Run a command; return its stripped output, or None when it is missing or fails."""
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def template_folder(repo_dir: str) -> Path | None:
    """The template's folder; cookiecutter passes it as typed, so a relative path is resolved
    against the shell's working directory (hooks run inside the new project)."""
    path = Path(repo_dir)
    if not path.is_absolute():
        path = Path(os.environ.get("PWD", "")) / path
    return path.resolve() if (path / "cookiecutter.json").is_file() else None


def template_origin(answers: dict) -> tuple[str, str | None]:
    """Where the template came from and at which commit, as far as can be known."""
    source = expand_template_source(str(answers.get("_template", "")))
    repo_dir = template_folder(str(answers.get("_repo_dir", "")))
    if repo_dir is None:
        return source, None
    top = run("git", "-C", str(repo_dir), "rev-parse", "--show-toplevel")
    commit = None
    if top and Path(top).resolve() == repo_dir:
        commit = run("git", "-C", str(repo_dir), "rev-parse", "HEAD")
    if not source.startswith(REMOTE_TEMPLATE_PREFIXES):
        # A local template: its clone's origin holds on other machines, a folder path does not.
        origin = run("git", "-C", str(repo_dir), "remote", "get-url", "origin") if commit else None
        source = origin or str(repo_dir)
    return source, commit


def recorded_answers(answers: dict, source: str, commit: str | None) -> dict:
    """The `.cruft.json` document: public answers only, since private keys hold local paths."""
    context = {key: value for key, value in answers.items() if not key.startswith("_")}
    context["_template"] = source
    if commit:
        context["_commit"] = commit
    return {
        "template": source,
        "commit": commit,
        "checkout": answers.get("_checkout"),
        "context": {"cookiecutter": context},
        "directory": None,
        # What the hook makes rather than renders: cruft must not diff or patch these.
        "skip": [".git", ".dvc", ".cruft.json"],
    }


def git_identity(project: Path, answers: dict) -> list[str]:
    """`-c user.*` flags when git has no identity, so the first commit is the team's."""
    if run("git", "config", "user.email", cwd=project) and run(
        "git", "config", "user.name", cwd=project
    ):
        return []
    return [
        "-c",
        f"user.name={answers['author_name']}",
        "-c",
        f"user.email={answers['author_email']}",
    ]


def init_repositories(project: Path, answers: dict) -> list[str]:
    """git init, dvc init and the first commit where possible; return notes for the user."""
    notes = []
    if shutil.which("git") is None:
        return ["git was not found: run `git init` and commit, then `make setup` initialises DVC."]
    run("git", "init", "--quiet", "--initial-branch=main", cwd=project)
    dvc, make = shutil.which("dvc"), shutil.which("make")
    if dvc and make:
        if run(make, "--no-print-directory", "dvc-init", f"DVC={dvc}", cwd=project) is None:
            notes.append("`dvc init` failed: `make setup` will try again.")
    else:
        notes.append("DVC was not found on PATH: `make setup` installs it and initialises DVC.")
    run("git", "add", "--all", cwd=project)
    commit = run(
        "git",
        *git_identity(project, answers),
        "commit",
        "--quiet",
        "--no-verify",
        "-m",
        "Initial commit from mlops-template",
        cwd=project,
    )
    if commit is None:
        notes.append("The initial git commit failed: check `git status` and commit by hand.")
    return notes


def main(answers: dict) -> None:
    project = Path.cwd()
    choose_task_files(project, answers["task"])
    remove_parts(project, paths_to_remove(answers))
    remove_empty_folders(project)
    source, commit = template_origin(answers)
    document = recorded_answers(answers, source, commit)
    (project / ".cruft.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    notes = init_repositories(project, answers)
    print(f"\nCreated {answers['project_name']} in {project}")
    for note in notes:
        print(f"  note: {note}")
    # Relative to the folder the user ran cookiecutter from (the hook itself runs in the project).
    where = os.path.relpath(project, os.environ.get("PWD") or project.parent)
    print(f"Next: cd {where} && make setup && make pipeline\n")


if __name__ == "__main__":
    main(json.loads({{cookiecutter | jsonify | tojson}}))
