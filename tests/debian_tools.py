"""Tools the tests need that have no PyPI wheel, taken from Debian's apt when they are missing.

`make test` must pass on a fresh Debian machine with only python3, git and make. Prometheus
(promtool for the alert rules, the server for a real scrape) and wrk (`make bench`'s load) have
no wheel: as root with apt-get, the first test that needs one installs its Debian package (about
20 s, once); anywhere else the test fails with the command to run, since its tier claims that
feature. The Docker engine has its own installer, tools/docker_engine.py.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess

import pytest

# Executable -> the Debian package that ships it.
PACKAGES = {"promtool": "prometheus", "prometheus": "prometheus", "wrk": "wrk"}
APT_SECONDS = 600
LOCK_FILE = "/tmp/mlops-template-apt.lock"


def debian_tool(name: str) -> str:
    """The path of `name`, installing its Debian package first where this machine allows."""
    found = shutil.which(name)
    if found is not None:
        return found
    package = PACKAGES[name]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(
            f"{name} is missing: install Debian's {package} (apt-get install {package})",
            pytrace=False,
        )
    print(f"==> apt-get install {package}, for {name} (about 20 s, once)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # One install at a time: another test worker may want the same package (apt has its own lock,
    # but a second apt-get fails on it instead of waiting).
    with open(LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        ):
            if shutil.which(name) is not None:  # installed meanwhile by another worker
                break
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=APT_SECONDS, check=False
            )
            if done.returncode != 0:
                failed = f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}"
                pytest.fail(failed, pytrace=False)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"Debian's {package} installed no {name}", pytrace=False)
    return found
