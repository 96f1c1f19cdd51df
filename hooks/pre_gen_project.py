"""Reject answers that would give a broken or awkward project, before anything is written.

Cookiecutter renders this file with Jinja; the only template expression is the JSON of the answers
below, so the checks themselves are plain Python and can be unit-tested by the template's tests.
A non-zero exit makes cookiecutter delete the half-made project folder.
"""

from __future__ import annotations

import json
import keyword
import re
import sys

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
    "tests",
}
REQUIREMENTS = {
    "use_redis_cache": "use_api",
    "use_kubernetes": "use_docker",
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


def problems(answers: dict) -> list[str]:
    """Return one line per broken rule, each naming the variable and the rule."""
    found = []
    slug = str(answers.get("project_slug", "")).strip()
    module = str(answers.get("module_name", ""))
    if not slug:
        found.append("project_slug: must not be empty")
    elif not SLUG_RULE.match(slug) or len(slug) > SLUG_MAX_LENGTH:
        found.append(
            f"project_slug: {slug!r} is not a good folder name; use lowercase letters, digits and "
            f"single hyphens, start with a letter, at most {SLUG_MAX_LENGTH} characters "
            "(for example 'breast-cancer-diagnosis')"
        )
    if not module.isidentifier() or not module.isascii():
        found.append(f"module_name: {module!r} is not a valid Python identifier")
    elif keyword.iskeyword(module) or keyword.issoftkeyword(module):
        found.append(f"module_name: {module!r} is a Python keyword")
    elif module != module.lower():
        found.append(f"module_name: {module!r} must be lowercase (PEP 8 package names)")
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


def main(answers: dict) -> int:
    found = problems(answers)
    for line in found:
        print(f"ERROR: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(json.loads({{cookiecutter | jsonify | tojson}})))
