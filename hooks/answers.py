"""Jinja filters the template's variables use (cookiecutter loads this through `_extensions`).

`required` stops rendering, before any folder is created, when a value that names a folder is
empty: cookiecutter would otherwise fail with a confusing message, or with --overwrite-if-exists
write the project's files straight into the output folder.
"""

from __future__ import annotations

from cookiecutter.exceptions import EmptyDirNameException
from jinja2 import Environment
from jinja2.ext import Extension


def required(value: object, variable: str) -> object:
    """Return `value`, or fail with a one-line message naming `variable` when it is empty.

    Cookiecutter's command line prints this exception as one line and exits 1.
    """
    if not str(value).strip():
        raise EmptyDirNameException(f"ERROR: {variable}: must not be empty")
    return value


class RequiredValueExtension(Extension):
    """Adds the `required` filter."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["required"] = required
