"""Reading a team's files, which are untrusted: never through a link, never more than a limit.

A repository can hold a link to `/dev/zero` or to a file outside it, a device, a FIFO, or a file
of hundreds of megabytes. Every read of a team's file goes through `refusal` first: a link is
reported, not followed; anything but a regular file is reported; a file over the limit is
reported, not read (`--max-file-size` for the files compared; a fixed cap for the small files
the command reads itself, like `.cruft.json` and `dvc.yaml`).
"""

from __future__ import annotations

import stat
from pathlib import Path

from mlops_template.errors import ToolError

# Text compared across teams (`--max-file-size` sets it): larger files are reported, not read.
COMPARED_BYTES = 1_000_000


def refusal(path: Path, limit: int) -> str | None:
    """Why `path` is not read (a link, not a regular file, over `limit` bytes), or None."""
    try:
        info = path.lstat()
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link: not followed"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size > limit:
        return f"{info.st_size / 1e6:.1f} MB, over the {limit / 1e6:g} MB limit: not read"
    return None


def read_bytes(path: Path, limit: int, shown: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; ToolError naming `shown` otherwise."""
    reason = refusal(path, limit)
    if reason:
        raise ToolError(f"{shown} is {reason}")
    try:
        return path.read_bytes()[: limit + 1]
    except OSError as error:
        raise ToolError(f"{shown} cannot be read ({error.strerror})") from None


def read_text(path: Path, limit: int, shown: str) -> str:
    """The UTF-8 text of a small regular file (see `read_bytes`)."""
    return read_bytes(path, limit, shown).decode("utf-8", errors="replace")
