"""Shared machinery of the template's tests: the option matrix and cached renders.

Each option set is rendered once per session (`rendered`) and every fast test reads that render;
the slow tier renders its own copies, since `make setup` writes into the project.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from cookiecutter.main import cookiecutter

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
COOKIECUTTER_JSON = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
# Option -> the option that must be on for it (also enforced by hooks/answers.py).
REQUIREMENTS = {
    "use_redis_cache": "use_api",
    "use_explain_api": "use_api",
    "use_docker": "use_api",
    "use_kubernetes": "use_docker",
    "use_monitoring": "use_api",  # it watches the prediction service
}


def option_values(name: str) -> list:
    """Every value an option can take, default first."""
    default = COOKIECUTTER_JSON[name]
    if isinstance(default, list):
        return default
    if isinstance(default, bool):
        return [default, not default]
    return [default]


PUBLIC_OPTIONS = [name for name in COOKIECUTTER_JSON if not name.startswith("_")]
CHOICE_OPTIONS = [name for name in PUBLIC_OPTIONS if len(option_values(name)) > 1]


def option_matrix() -> dict[str, dict]:
    """Option sets that render every value of every option at least once.

    Options that do not interact are cycled together (set k takes value k mod n of each option)
    instead of multiplied; where a cycled set breaks a requirement, the required switch is turned
    on, and a last set turns every switch off so the "off" values still appear.
    """
    width = max(len(option_values(name)) for name in CHOICE_OPTIONS)
    sets = {}
    for k in range(width):
        answers = {
            name: option_values(name)[k % len(option_values(name))] for name in CHOICE_OPTIONS
        }
        for _ in REQUIREMENTS:  # as often as the longest chain (kubernetes -> docker -> api)
            for option, needed in REQUIREMENTS.items():
                if answers[option]:
                    answers[needed] = True
        sets["default" if k == 0 else f"cycle-{k}"] = answers
    minimal = dict(sets["default"])
    minimal.update(
        {name: False for name in CHOICE_OPTIONS if isinstance(option_values(name)[0], bool)}
    )
    minimal.update(dvc_remote="azure", mlflow_backend="postgresql", open_source_license="none")
    sets["minimal"] = minimal
    return sets


OPTION_SETS = option_matrix()
# Beyond the cycle, in one render (one install in the slow tier): the longest names the hooks
# accept, with both optional parts of the service (the cache and monitoring) at once, and text
# answers holding quotes, a colon, an emoji and a backslash, which every file must escape for its
# kind (tests/test_text_answers.py).
LONGEST_SLUG = "hospital-readmission-risk-from-discharge-summaries-for-the-cours"
ODD_TEXT = 'Team "Q": Rocket \N{ROCKET} \\ Lab'
COMBINED_SETS = {
    "odd-text": {
        **OPTION_SETS["default"],
        "project_slug": LONGEST_SLUG,
        "use_redis_cache": True,
        "project_name": ODD_TEXT,
        "author_name": ODD_TEXT,
    },
}
ALL_SETS = {**OPTION_SETS, **COMBINED_SETS}


def path_without_dvc() -> str:
    """PATH minus folders holding a `dvc` executable, so renders do not depend on the machine."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(f for f in folders if f and not (Path(f) / "dvc").exists())


def render(output_dir: Path, answers: dict, template: Path = TEMPLATE_DIR) -> Path:
    """Render the template without prompts and return the project folder."""
    output_dir.mkdir(parents=True, exist_ok=True)
    project = cookiecutter(
        str(template), no_input=True, extra_context=answers, output_dir=str(output_dir)
    )
    return Path(project)


def run(command: list[str], cwd: Path, env: dict | None = None, timeout: float = 900):
    """Run a command, failing the test with its output when it exits non-zero."""
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited {done.returncode} in {cwd}\n"
            f"--- stdout ---\n{done.stdout[-6000:]}\n--- stderr ---\n{done.stderr[-6000:]}"
        )
    return done


def text_files(project: Path):
    """Every file of the project outside .git, with its text (None for binary files)."""
    for path in sorted(project.rglob("*")):
        if ".git" in path.relative_to(project).parts or not path.is_file():
            continue
        try:
            yield path, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            yield path, None


def parses(path: Path, text: str) -> bool:
    """Parse a YAML, TOML or JSON file, raising on a syntax error; False for any other kind."""
    if path.suffix in {".yml", ".yaml"}:
        yaml.safe_load(text)
    elif path.suffix == ".toml":
        tomllib.loads(text)
    elif path.suffix == ".json":
        json.loads(text)
    else:
        return False
    return True


# What a copy of the template leaves out: git, virtualenvs, build output and caches.
TEMPLATE_COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".tools", "build", "site", "__pycache__", ".pytest_cache", ".ruff_cache"
)


def template_snapshot(destination: Path) -> Path:
    """A git repository holding the template's current files, for cruft's clone-based commands."""
    shutil.copytree(TEMPLATE_DIR, destination, ignore=TEMPLATE_COPY_IGNORE)
    for command in (
        ["git", "init", "--quiet", "--initial-branch=main"],
        ["git", "add", "--all"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "snapshot"],
    ):
        run(command, cwd=destination)
    return destination


@pytest.fixture(autouse=True)
def no_dvc_on_path(monkeypatch):
    monkeypatch.setenv("PATH", path_without_dvc())


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """Render each option set once per session; returns a function id -> project folder."""
    cache: dict[str, Path] = {}
    saved_path = os.environ.get("PATH", "")

    def get(set_id: str) -> Path:
        if set_id not in cache:
            os.environ["PATH"] = path_without_dvc()
            try:
                cache[set_id] = render(tmp_path_factory.mktemp(set_id), ALL_SETS[set_id])
            finally:
                os.environ["PATH"] = saved_path
        return cache[set_id]

    return get


@pytest.fixture(scope="session")
def progress(request):
    """`progress(text)`: a line on the terminal now, while the slow tier works (not captured)."""
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")

    def say(text: str) -> None:
        if reporter is None:
            return
        # Past pytest's output capture, which would otherwise swallow the line.
        paused = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
        with paused:
            reporter.write_line(f"    {text}")

    return say


# Whether our Docker engine ran when a run with workers started (its controller then stops it).
ENGINE_RAN_BEFORE = pytest.StashKey[bool]()


# The controller imports docker_fixtures itself; test processes leave it to pytest_plugins, which
# rewrites its asserts.
def pytest_sessionstart(session):
    if running_workers(session.config):
        from docker_fixtures import our_engine_runs

        session.config.stash[ENGINE_RAN_BEFORE] = our_engine_runs()


def pytest_sessionfinish(session):
    if running_workers(session.config) and ENGINE_RAN_BEFORE in session.config.stash:
        from docker_fixtures import stop_after_workers

        stop_after_workers(session.config.stash[ENGINE_RAN_BEFORE])


def running_workers(config) -> bool:
    """True in the controlling process of a run with pytest-xdist workers."""
    workers = config.getoption("numprocesses", default=None)
    return bool(workers) and not hasattr(config, "workerinput")


# The instructor command's team repositories, rendered once for every test file that uses them.
from instructor_repos import course  # noqa: E402, F401
