"""Run git quietly and turn its failures into one-line errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mlops_template.errors import ToolError

# Never wait for a password prompt: a private URL without credentials fails at once.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}


def git(
    *args: str,
    cwd: Path | None = None,
    check: bool = True,
    binary: bool = False,
    ok: tuple[int, ...] = (0,),
):
    """Run `git args...` and return its stdout (text, or bytes with `binary`).

    An exit status outside `ok` raises ToolError with git's last line of error output, or
    returns None when `check` is off.
    """
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            env={**os.environ, **GIT_ENV},
            check=False,
        )
    except OSError as error:
        raise ToolError(f"git cannot run: {error}") from None
    if done.returncode in ok:
        return done.stdout if binary else done.stdout.decode("utf-8", errors="replace")
    if not check:
        return None
    lines = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
    raise ToolError(f"git {args[0]} failed: {lines[-1] if lines else f'exit {done.returncode}'}")


def is_repository_root(folder: Path) -> bool:
    """Whether `folder` is the top of a git work tree (not merely inside one)."""
    top = git("rev-parse", "--show-toplevel", cwd=folder, check=False)
    return top is not None and Path(top.strip()).resolve() == folder.resolve()


def has_commit(repository: Path, commit: str) -> bool:
    """Whether the repository (a work tree or a bare clone) holds `commit`."""
    return git("cat-file", "-e", f"{commit}^{{commit}}", cwd=repository, check=False) is not None


def is_url(source: str) -> bool:
    """Whether a repository argument is a git URL rather than a local path."""
    if "://" in source or source.startswith("git@"):
        return True
    # scp-like `host:owner/name` (but not a Windows drive or a local path holding a colon)
    head, _, tail = source.partition(":")
    return bool(tail) and "/" not in head and "." in head and not Path(source).exists()
