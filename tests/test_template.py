"""The template repository itself: option conventions, lint of its own code and workflows."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from conftest import COOKIECUTTER_JSON, PUBLIC_OPTIONS, TEMPLATE_DIR, run

BIN = Path(sys.executable).parent
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def test_options_follow_one_convention():
    prompts = COOKIECUTTER_JSON["__prompts__"]
    for name in PUBLIC_OPTIONS:
        value = COOKIECUTTER_JSON[name]
        assert SNAKE_CASE.match(name), name
        assert name in prompts, f"{name} has no prompt"
        if isinstance(value, list):
            assert all(isinstance(choice, str) for choice in value), name
            assert not any("{" in choice or "%" in choice for choice in value), f"Jinja in {name}"
            assert set(prompts[name]) == {"__prompt__", *value}, f"{name}: a label per choice"
        elif isinstance(value, bool):
            assert name.startswith("use_"), f"switch {name} should be called use_*"
        else:
            assert isinstance(value, str), name
            assert value.lower() not in {"yes", "no", "true", "false"}, f"{name}: use a JSON bool"


def test_computed_and_private_keys_are_known():
    private = {name for name in COOKIECUTTER_JSON if name.startswith("_")}
    assert private == {"__checked", "__prompts__", "_help", "_extensions"}


# The generated package imports itself relatively, so its files hold no Jinja and lint as they
# are; but for the one place that names the service's optional parts (api/main.py's PARTS, and
# their settings, and the list of modules in api/__init__.py), which every render lints.
PACKAGE_DIR = "{{cookiecutter.project_slug}}/{{cookiecutter.module_name}}"
SERVICE_ASSEMBLY = ("api/main.py", "api/settings.py", "api/__init__.py")


def test_the_generated_package_holds_no_jinja_but_where_the_service_names_its_parts():
    """Options are whole files (the post-generation hook removes them), never Jinja blocks in
    the package: a team reads and edits these files as plain Python. The service's assembly
    names the parts it was generated with, so that a reader sees them in plain code."""
    package = TEMPLATE_DIR / PACKAGE_DIR
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        relative = path.relative_to(package).as_posix()
        if relative == "__init__.py":
            text = text.split('"""')[2]  # its docstring names the project: the rest is Python
        if relative in SERVICE_ASSEMBLY:
            assert "{%" in text, f"{relative} has no Jinja left: lint it with the others"
            continue
        assert "{%" not in text and "{{" not in text, path.relative_to(TEMPLATE_DIR)


def test_template_code_and_the_generated_package_pass_ruff():
    paths = ["hooks", "tests", "tools", "src", PACKAGE_DIR]
    # The template's settings for all of them: the generated pyproject.toml is a Jinja file.
    assembly = ",".join(f"**/{name}" for name in SERVICE_ASSEMBLY)  # braces are glob syntax
    config = ["--no-cache", "--config", "pyproject.toml", "--extend-exclude", assembly]
    run([str(BIN / "ruff"), "check", *config, *paths], cwd=TEMPLATE_DIR)
    run([str(BIN / "ruff"), "format", *config, "--check", *paths], cwd=TEMPLATE_DIR)


def test_template_workflows_match_the_github_schema():
    workflows = sorted(str(path) for path in (TEMPLATE_DIR / ".github" / "workflows").glob("*.yml"))
    assert len(workflows) == 2
    schema = ["--builtin-schema", "vendor.github-workflows"]
    run([str(BIN / "check-jsonschema"), *schema, *workflows], cwd=TEMPLATE_DIR)


def test_makefile_help_lists_the_readme_commands():
    shown = run(["make", "--no-print-directory", "help"], cwd=TEMPLATE_DIR).stdout
    shown = re.sub(r"\x1b\[[0-9;]*m", "", shown)  # colour codes
    for target in ("demo", "test", "test-fast", "test-slow", "docs", "lint"):
        assert re.search(rf"\b{target}\b", shown), target
