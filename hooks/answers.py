"""The rules the answers must follow, checked before any file is written.

Cookiecutter loads this module as a Jinja extension (`_extensions` in cookiecutter.json). Its
`checked` filter runs when cookiecutter computes the private `__checked` key, right after the last
question and before any folder exists. A broken rule stops the render with one `ERROR:` line per
rule and nothing else: cookiecutter's command line prints this exception's message and exits 1,
where a failing pre-generation hook would add cookiecutter's own traceback.
"""

from __future__ import annotations

import keyword
import re
import sys

from cookiecutter.exceptions import FailedHookException
from jinja2 import Environment
from jinja2.ext import Extension

SLUG_RULE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
SLUG_MAX_LENGTH = 64
EMAIL_RULE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Import names the generated project itself depends on: a package called like one of them would
# shadow it and break the project in confusing ways.
STACK_MODULES = {
    "cookiecutter",
    "dvc",
    "mlflow",
    "fastapi",
    "great_expectations",
    "codecarbon",
    "evidently",
    "prometheus_client",
    "pytest",
    "sklearn",
    "pandas",
    "numpy",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "pydantic",
    "pydantic_settings",
    "uvicorn",
    "typer",
    "redis",
    "yaml",
}
# Folders of the generated project: a package with one of these names would land inside it
# (data/ and models/ are git-ignored, so the package would never be committed).
LAYOUT_FOLDERS = {
    "benchmarks",
    "build",
    "data",
    "deploy",
    "dist",
    "docs",
    "expectations",
    "loadtests",
    "models",
    "notebooks",
    "references",
    "reports",
    "site",
    "tests",
}
REQUIREMENTS = {
    "use_redis_cache": "use_api",
    "use_docker": "use_api",  # the image is the prediction service
    "use_kubernetes": "use_docker",
    "use_monitoring": "use_api",  # it watches the prediction service
}
BOOLEAN_VARIABLES = (
    "use_api",
    "use_redis_cache",
    "use_docker",
    "use_kubernetes",
    "use_monitoring",
    "use_github_actions",
    "use_docs_site",
)


class AnswersRejected(FailedHookException):
    """Answers that break a rule; the message holds one `ERROR:` line per broken rule."""


def problems(answers: dict) -> list[str]:
    """Return one line per broken rule, each naming the variable and the rule."""
    found = []
    slug = str(answers.get("project_slug", "")).strip()
    module = str(answers.get("module_name", "")).strip()
    if not slug:
        found.append("project_slug: must not be empty")
    elif not SLUG_RULE.match(slug) or len(slug) > SLUG_MAX_LENGTH:
        found.append(
            f"project_slug: {slug!r} is not a good folder name; use lowercase letters, digits and "
            f"single hyphens, start with a letter, at most {SLUG_MAX_LENGTH} characters "
            "(for example 'breast-cancer-diagnosis')"
        )
    if not module:
        found.append("module_name: must not be empty")
    elif not module.isidentifier() or not module.isascii():
        found.append(f"module_name: {module!r} is not a valid Python identifier")
    elif keyword.iskeyword(module) or keyword.issoftkeyword(module):
        found.append(f"module_name: {module!r} is a Python keyword")
    elif module != module.lower():
        found.append(f"module_name: {module!r} must be lowercase (PEP 8 package names)")
    elif module in LAYOUT_FOLDERS:
        found.append(
            f"module_name: {module!r} is a folder of the project layout ({module}/); "
            "pick a name specific to the project, e.g. '<topic>_model'"
        )
    elif module in sys.stdlib_module_names or module in STACK_MODULES:
        found.append(
            f"module_name: {module!r} would shadow the standard library or a dependency; "
            "pick a name specific to the project"
        )
    if not EMAIL_RULE.match(str(answers.get("author_email", ""))):
        found.append(f"author_email: {answers.get('author_email')!r} is not an email address")
    for name in BOOLEAN_VARIABLES:
        if not isinstance(answers.get(name), bool):
            found.append(f"{name}: must be true or false, got {answers.get(name)!r}")
    for option, needed in REQUIREMENTS.items():
        if answers.get(option) is True and answers.get(needed) is False:
            found.append(f"{option}: needs {needed} to be true")
    return found


def checked(answers: dict) -> str:
    """Raise AnswersRejected listing every broken rule; render as nothing when all hold."""
    found = problems(dict(answers))
    if found:
        raise AnswersRejected("\n".join(f"ERROR: {line}" for line in found))
    return ""


class AnswerRulesExtension(Extension):
    """Adds the `checked` filter."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["checked"] = checked
