"""Run git on team repositories, which are untrusted: quietly, bounded, and unable to run code.

A repository's own `.git/config` could name commands that git runs while it reads the
repository (fsmonitor, hooks, a pager, an ssh command, clean filters, text conversion, an
external diff). Every call here overrides each of those keys on the command line, which outranks
the repository's config; reads no system or user config; takes no `GIT_*` variable from the
environment (`GIT_DIR` and the like would point git elsewhere); and never prompts. The callers
use plumbing that runs no filter: `ls-files`, `cat-file`, `log --no-textconv --no-ext-diff`.
Every call has a timeout (`TIMEOUT`, set from `--timeout`): a clone of a server that accepts and
never answers cannot hang the run.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from mlops_template.errors import ToolError

# Seconds one git call may take; the command line's --timeout sets it.
TIMEOUT = 120.0
# Each key of a repository's config that can make git run a program while reading, set to
# nothing; and transfers that give up when they stall.
SAFETY = [
    "-c", "core.fsmonitor=false",
    "-c", f"core.hooksPath={os.devnull}",
    "-c", "core.pager=cat",
    "-c", "core.sshCommand=ssh -o BatchMode=yes",
    "-c", "core.askPass=true",
    "-c", "core.editor=true",
    "-c", "core.symlinks=false",  # a clone writes a link as a small file holding its target
    "-c", "diff.external=",
    "-c", "credential.helper=",
    "-c", "protocol.ext.allow=never",
    "-c", "http.lowSpeedLimit=1000",
    "-c", "http.lowSpeedTime=30",
]  # fmt: skip
# A commit as .cruft.json records it: hex only, so it can never be read as an option.
COMMIT = re.compile(r"^[0-9a-f]{7,40}$")


def environment() -> dict[str, str]:
    """This process's environment without any GIT_* variable, and git's own settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="true",
        LC_ALL="C",
    )
    return env


def git(
    *args: str,
    cwd: Path | None = None,
    check: bool = True,
    binary: bool = False,
    ok: tuple[int, ...] = (0,),
):
    """Run `git args...` (with SAFETY) and return its stdout (text, or bytes with `binary`).

    An exit status outside `ok` raises ToolError with git's last line of error output, or
    returns None when `check` is off; so does a call that takes more than TIMEOUT seconds.
    """
    try:
        done = subprocess.run(
            ["git", *SAFETY, *args],
            cwd=cwd,
            capture_output=True,
            env=environment(),
            stdin=subprocess.DEVNULL,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        if not check:
            return None
        raise ToolError(f"git {args[0]} took more than {TIMEOUT:.0f} s (see --timeout)") from None
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
    if not COMMIT.match(commit):
        return False
    return git("cat-file", "-e", f"{commit}^{{commit}}", cwd=repository, check=False) is not None


def is_url(source: str) -> bool:
    """Whether a repository argument is a git URL rather than a local path."""
    if "://" in source or source.startswith("git@"):
        return True
    # scp-like `host:owner/name` (but not a Windows drive or a local path holding a colon)
    head, _, tail = source.partition(":")
    return bool(tail) and "/" not in head and "." in head and not Path(source).exists()
