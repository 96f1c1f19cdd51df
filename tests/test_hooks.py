"""Hooks: bad answers are refused with one clear line and leave nothing; answers round-trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException

from conftest import OPTION_SETS, TEMPLATE_DIR, render, run, template_snapshot

BIN = Path(sys.executable).parent

OK_MODULE = {"module_name": "ok_module"}
REJECTED = [
    (
        {"project_slug": "My Project", "module_name": "ok_module"},
        "project_slug: 'My Project' is not a good folder name",
    ),
    (
        {"project_slug": "-leading-hyphen", "module_name": "ok_module"},
        "project_slug: '-leading-hyphen' is not a good folder",
    ),
    (
        {"project_slug": "double--hyphen", "module_name": "ok_module"},
        "project_slug: 'double--hyphen' is not a good folder",
    ),
    ({"project_slug": "x" * 65, "module_name": "ok_module"}, "at most 64 characters"),
    ({"module_name": "1st_model"}, "module_name: '1st_model' is not a valid Python identifier"),
    ({"module_name": "my-model"}, "module_name: 'my-model' is not a valid Python identifier"),
    ({"module_name": "class"}, "module_name: 'class' is a Python keyword"),
    ({"module_name": "match"}, "module_name: 'match' is a Python keyword"),
    ({"module_name": "MyModel"}, "module_name: 'MyModel' must be lowercase"),
    ({"module_name": "json"}, "module_name: 'json' would shadow the standard library"),
    ({"module_name": "mlflow"}, "module_name: 'mlflow' would shadow the standard library or a dep"),
    ({"module_name": "data"}, "module_name: 'data' is a folder of the project layout (data/)"),
    ({"module_name": "reports"}, "module_name: 'reports' is a folder of the project layout"),
    ({"author_email": "not-an-email"}, "author_email: 'not-an-email' is not an email address"),
    # Quotes would need quoting in the package metadata and in git's identity.
    ({"author_email": 'a"b@example.org'}, """author_email: 'a"b@example.org' is not an email"""),
    # Text answers may hold anything that fits on one line; each file escapes it for its kind.
    ({"author_name": "Team\nAlpha"}, "author_name: one line of text, without control characters"),
    ({"description": "Tab\there"}, "description: one line of text, without control characters"),
    ({"author_name": " "}, "author_name: must not be empty"),
    (
        {"use_api": False, "use_redis_cache": True, "use_docker": False, "use_monitoring": False},
        "use_redis_cache: needs use_api to be true",
    ),
    ({"use_docker": False, "use_kubernetes": True}, "use_kubernetes: needs use_docker to be true"),
    (
        {"use_api": False, "use_docker": True, "use_monitoring": False},
        "use_docker: needs use_api to be true",
    ),
    (
        {"use_api": False, "use_docker": False, "use_monitoring": True},
        "use_monitoring: needs use_api to be true",
    ),
]


def rejection(tmp_path: Path, answers: dict) -> list[str]:
    """The lines a render with these answers is refused with; nothing may be left behind."""
    with pytest.raises(FailedHookException) as raised:
        render(tmp_path, answers)
    assert list(tmp_path.iterdir()) == []
    return str(raised.value).splitlines()


@pytest.mark.parametrize(("answers", "message"), REJECTED, ids=[m for _, m in REJECTED])
def test_bad_answers_are_rejected_and_leave_nothing(tmp_path, answers, message):
    lines = rejection(tmp_path, answers)
    assert len(lines) == 1
    assert lines[0].startswith("ERROR: ") and message in lines[0]


@pytest.mark.parametrize("variable", ["project_slug", "module_name"])
def test_empty_folder_names_are_refused_before_any_folder_exists(tmp_path, variable):
    # An empty slug leaves the module name, derived from it, empty too.
    assert f"ERROR: {variable}: must not be empty" in rejection(tmp_path, {variable: "  "})


def test_a_name_that_is_a_layout_folder_is_refused(tmp_path):
    """`project_name=Data` would put the package in data/, which git ignores."""
    lines = rejection(tmp_path, {"project_name": "Data"})
    assert lines == [
        "ERROR: module_name: 'data' is a folder of the project layout (data/); pick a name "
        "specific to the project, e.g. '<topic>_model'"
    ]


def test_every_broken_rule_is_reported_at_once(tmp_path):
    lines = rejection(
        tmp_path, {"project_slug": "Bad Slug", "module_name": "def", "author_email": "x"}
    )
    assert [line.split(":")[1].strip() for line in lines] == [
        "project_slug",
        "module_name",
        "author_email",
    ]


def test_the_command_line_prints_the_rules_only(tmp_path):
    done = subprocess.run(
        [str(BIN / "cookiecutter"), "--no-input", "-o", str(tmp_path), str(TEMPLATE_DIR),
         "author_email=nobody", "project_name=Models"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 1
    assert (done.stdout + done.stderr).splitlines() == [
        "ERROR: module_name: 'models' is a folder of the project layout (models/); pick a name "
        "specific to the project, e.g. '<topic>_model'",
        "ERROR: author_email: 'nobody' is not an email address",
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("answers", "word"),
    [({"python_version": "3.10"}, "python_version"), ({"use_api": "maybe"}, "use_api")],
)
def test_values_outside_the_options_are_refused_before_rendering(tmp_path, answers, word):
    with pytest.raises(ValueError, match=word):
        render(tmp_path, answers)
    assert list(tmp_path.iterdir()) == []


def test_yes_no_strings_are_accepted_for_switches(tmp_path):
    project = render(tmp_path, {"use_docs_site": "no", "use_github_actions": "yes"})
    assert not (project / "mkdocs.yml").exists()
    assert (project / ".github" / "workflows" / "ci.yml").exists()


def test_without_git_the_project_is_complete_and_says_what_to_run(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent / "no-such-folder"))
    project = render(tmp_path, OPTION_SETS["default"])
    assert not (project / ".git").exists()
    assert (project / ".cruft.json").is_file() and (project / "Makefile").is_file()
    assert "note: git was not found: run `git init`" in capfd.readouterr().out


def test_recorded_answers_hold_no_absolute_paths(rendered):
    for set_id in OPTION_SETS:
        record = json.loads((rendered(set_id) / ".cruft.json").read_text())
        answers = record["context"]["cookiecutter"]
        private = {key for key in answers if key.startswith("_")}
        assert private <= {"_template", "_commit"}
        for key, value in answers.items():
            if key.startswith("_"):
                continue
            assert not (isinstance(value, str) and value.startswith("/")), key
        assert set(OPTION_SETS[set_id]) <= set(answers)


def tree(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(folder).parts
    }


@pytest.fixture(scope="module")
def snapshot_project(tmp_path_factory):
    """A template snapshot in git (so the commit is known) and a project rendered from it."""
    template = template_snapshot(tmp_path_factory.mktemp("template") / "mlops-template")
    project = render(tmp_path_factory.mktemp("project"), OPTION_SETS["cycle-1"], template)
    return template, project


def test_cruft_json_round_trips(snapshot_project, tmp_path):
    template, project = snapshot_project
    record = json.loads((project / ".cruft.json").read_text())
    commit = run(["git", "rev-parse", "HEAD"], cwd=template).stdout.strip()
    assert record["template"] == str(template)
    assert record["commit"] == commit
    answers = {k: v for k, v in record["context"]["cookiecutter"].items() if not k.startswith("_")}
    again = render(tmp_path, answers, template)
    assert tree(again) == tree(project)


def test_cruft_check_diff_and_update_work(snapshot_project, tmp_path):
    template, _ = snapshot_project
    project = render(tmp_path, OPTION_SETS["default"], template)
    cruft = str(BIN / "cruft")
    assert "up to date" in run([cruft, "check"], cwd=project).stdout
    assert "diff --git" not in run([cruft, "diff", "--exit-code"], cwd=project).stdout

    readme = template / "{{cookiecutter.project_slug}}" / "README.md"
    readme.write_text(readme.read_text() + "\nA line the template added later.\n")
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
    run(["git", *identity, "commit", "-qam", "template moves on"], cwd=template)
    new_commit = run(["git", "rev-parse", "HEAD"], cwd=template).stdout.strip()

    outdated = subprocess.run([cruft, "check"], cwd=project, capture_output=True, text=True)
    assert outdated.returncode != 0
    run([cruft, "update", "--skip-apply-ask"], cwd=project)
    assert "A line the template added later." in (project / "README.md").read_text()
    assert json.loads((project / ".cruft.json").read_text())["commit"] == new_commit
    assert "up to date" in run([cruft, "check"], cwd=project).stdout
