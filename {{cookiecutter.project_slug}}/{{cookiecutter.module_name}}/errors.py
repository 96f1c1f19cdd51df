"""Expected failures of the pipeline, and how a command reports them: one line, exit status 1.

Bad data, a bad parameter, an unreachable tracking server or a rejected model are not bugs: each
module raises a PipelineError subclass whose message says what is wrong and what to do, and the
command's `with reported("stage"):` block prints it as `stage: message` on stderr, without a
traceback. Anything else is a bug and keeps its traceback.
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

        message = " ".join(str(error).split())
        typer.echo(f"{command}: {message}", err=True)
        raise typer.Exit(1) from None
