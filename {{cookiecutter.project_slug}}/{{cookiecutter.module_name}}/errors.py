"""Expected failures (bad data, a bad parameter, an unreachable server, a rejected model): each
module raises a PipelineError whose message says what to fix, and a command's `with
reported("stage"):` prints it as one line, `stage: message`, and exits 1. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class PipelineError(Exception):
    """An expected failure; its message is one line that says what to fix."""


@contextmanager
def reported(command: str) -> Iterator[None]:
    """Turn a PipelineError raised inside the block into `command: message` and exit 1."""
    try:
        yield
    except PipelineError as error:
        import typer  # here: bundle.py, which the service imports, stays pydantic + stdlib only

        typer.echo(f"{command}: {' '.join(str(error).split())}", err=True)
        raise typer.Exit(1) from None
