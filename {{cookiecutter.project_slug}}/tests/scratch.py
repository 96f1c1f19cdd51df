"""Running commands in a scratch copy of the project (benchmarks/support.py makes one), for the
pipeline's end-to-end tests: `run` fails with the command's output, `commit` commits everything.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def run(
    command: list[str], cwd: Path, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess:
    """Run `command` in the scratch copy; with `check`, fail with its output when it fails."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        message = f"{' '.join(command)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        raise AssertionError(message)
    return done


def commit(root: Path, env: dict[str, str], message: str) -> None:
    run(["git", "add", "--all"], root, env)
    author = ["-c", "user.name=t", "-c", "user.email=t@e.org"]
    run(["git", *author, "commit", "-qm", message], root, env)
