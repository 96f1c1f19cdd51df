"""A private Docker engine and a local Python base image for the template's container tests.

The build machines reach no image registry, run no init system and re-sign HTTPS with a local CA,
so the slow tests cannot pull `python:3.11-slim` nor rely on a system Docker service. This tool
installs Debian's Docker, runs a dockerd of its own under a state folder and builds the base image
with mmdebstrap from the machine's own Debian mirror. Commands (run as root):

    install     apt-get docker.io, iptables, mmdebstrap if missing (~15 s); compose v2 and buildx
                CLI plugins from the next Debian release's packages into the state folder (~5 s)
    start       start our dockerd (ready in ~1 s), or reuse it; prints the DOCKER_HOST to use;
                a fresh start removes the containers a killed run left (restart policies)
    base-image  build local/python:3.11 (bookworm) or 3.13 (trixie) with mmdebstrap (~40 s once;
                a daemon that lost it re-imports the cached tarball in ~6 s); 3.12, which no
                Debian release has, is this machine's pyenv build on bookworm
    stop        stop our dockerd by PID and remove what it left on the host
    status      what is installed and running
    env         shell exports for our engine: eval "$(python3 tools/docker_engine.py env)"

The docker CLI used is Debian's (/usr/bin/docker, 20.10, BuildKit built in with DOCKER_BUILDKIT=1)
through a `docker` link in the state folder's bin/, first on the PATH that `env` gives: the newer
CLI some machines have first on PATH refuses BuildKit without buildx. Publishing ports is the
callers' job: always bind them to 127.0.0.1 (`-p 127.0.0.1::8000`), never to every address.

One file on purpose (hence its length): CI and developers run it with a bare python3 before any
venv exists, and the tests import it (tests/docker_fixtures.py).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_STATE_DIR = Path(os.environ.get("MLOPS_DOCKER_STATE", "/tmp/mlops-docker"))
PACKAGES = ("docker.io", "iptables", "mmdebstrap")
DOCKER_CLI = Path("/usr/bin/docker")  # Debian docker.io's CLI: BuildKit without a plugin
DOCKERD = Path("/usr/sbin/dockerd")
# bookworm's docker-compose is v1 (a Python program); the next release packages v2 as a plugin.
PLUGIN_SUITE = "trixie"
PLUGINS = ("docker-compose", "docker-buildx")
PYTHON_SUITES = {"3.11": "bookworm", "3.13": "trixie"}
# Pythons no Debian release packages: the interpreter pyenv built on this (bookworm) machine goes
# into /usr/local of a bookworm base, as the official images lay it out, with the libraries its
# modules link against, less its test suite, IDLE, tkinter and static library (~150 MB).
PYENV_VERSIONS = Path.home() / ".pyenv" / "versions"
PYENV_PYTHONS = {"3.12": "bookworm"}
PYENV_LIBRARIES = (
    "libbz2-1.0,libexpat1,libffi8,liblzma5,libncursesw6,libreadline8,libsqlite3-0,libssl3,"
    "libuuid1,zlib1g"
)
IMAGE_REPOSITORY = "local/python"
RECIPE_LABEL = "org.mlops-template.base-recipe"
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
CGROUP_ROOT = Path("/sys/fs/cgroup")
DOCKER_CHAINS = ("DOCKER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2", "DOCKER-USER")
DOCKER_BRIDGE = re.compile(r"^(docker0|br-[0-9a-f]{12})$")
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
LOCK_TIMEOUT = 1200.0  # the longest command, base-image, takes under a minute
# dockerd processes this Python process started, so that stopping them also reaps them.
_CHILDREN: dict[int, subprocess.Popen] = {}
_HELD: list[str] = []  # the command holding the state folder's lock in this process, if any


class EngineError(Exception):
    """An expected failure, reported as one line without a traceback."""


@dataclass(frozen=True)
class State:
    """Where everything of our engine lives; nothing of it goes into the repository."""

    root: Path = DEFAULT_STATE_DIR

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def pidfile(self) -> Path:
        return self.root / "dockerd.pid"

    @property
    def exec_root(self) -> Path:
        return self.root / "exec"

    @property
    def config_dir(self) -> Path:
        """DOCKER_CONFIG: our CLI plugins, and no user config.json or credential helpers."""
        return self.root / "config"

    @property
    def host_before(self) -> Path:
        return self.root / "host-before.json"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"


def run(command: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command quietly; a failure becomes an EngineError carrying its last output line."""
    kwargs.setdefault("timeout", 600)
    try:
        done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    except FileNotFoundError as error:
        raise EngineError(f"{command[0]} not found") from error
    except subprocess.TimeoutExpired as error:
        raise EngineError(f"{shlex.join(command)} took over {kwargs['timeout']} s") from error
    if check and done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise EngineError(f"{shlex.join(command[:3])}... failed: {lines[-1]}")
    return done


def docker_env(state: State) -> dict[str, str]:
    """The variables that point the docker CLI, compose and buildx at our engine."""
    return {
        "DOCKER_HOST": state.docker_host,
        "DOCKER_CONFIG": str(state.config_dir),
        "DOCKER_BUILDKIT": "1",
        "PATH": f"{state.root / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
    }


def docker(state: State, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return run([str(DOCKER_CLI), *args], check, env={**os.environ, **docker_env(state)}, **kwargs)


def exclusive(function):
    """Run function as root holding the state folder's lock (bounded wait), so that two sessions
    never start two daemons or build one tarball together; nested calls pass through."""

    @functools.wraps(function)
    def locked(state: State, *args, **kwargs):
        require_root()
        if _HELD:
            return function(state, *args, **kwargs)
        state.root.mkdir(parents=True, exist_ok=True)
        with open(state.root / "lock", "w") as handle:

            def acquire() -> bool:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    return False

            if not wait_until(acquire, LOCK_TIMEOUT, step=0.5):
                raise EngineError(f"{state.root}/lock held by another command for {LOCK_TIMEOUT} s")
            _HELD.append(function.__name__)
            try:
                return function(state, *args, **kwargs)
            finally:
                _HELD.clear()

    return locked


def require_root() -> None:
    if os.geteuid() != 0:
        raise EngineError("must run as root: dockerd, iptables and mmdebstrap need it")


# --- install -------------------------------------------------------------------------------


def missing_packages() -> list[str]:
    status = run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *PACKAGES], False)
    installed = {
        line.split()[0] for line in status.stdout.splitlines() if line.endswith(" installed")
    }
    return [name for name in PACKAGES if name not in installed]


def debian_entries() -> list[tuple[str, str, str]]:
    """(uri, suite, components) of the enabled Debian `deb` entries apt uses for this release."""
    codename = os_release().get("VERSION_CODENAME", "")
    entries = []
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in files:
        if path.suffix == ".sources":
            for stanza in path.read_text().split("\n\n"):
                fields = dict(re.findall(r"^([\w-]+):[ \t]*(.*)$", stanza, re.M))
                if "deb" in fields.get("Types", "").split() and fields.get("Enabled") != "no":
                    for uri in fields.get("URIs", "").split():
                        for suite in fields.get("Suites", "").split():
                            entries.append((uri, suite, fields.get("Components", "main")))
        elif path.suffix == ".list" or path.name == "sources.list":
            for line in path.read_text().splitlines() if path.exists() else []:
                words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
                if len(words) >= 4 and words[0] == "deb":
                    entries.append((words[1], words[2], " ".join(words[3:])))
    return [e for e in entries if codename and re.fullmatch(rf"{codename}(-\w+)?", e[1])]


def os_release() -> dict[str, str]:
    text = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    return {key: value.strip('"') for key, value in re.findall(r"^(\w+)=(.*)$", text, re.M)}


def mirror_lines(suite: str) -> list[str]:
    """The machine's Debian mirror lines, moved to another release (bookworm -> trixie...)."""
    codename = os_release().get("VERSION_CODENAME", "")
    lines = [f"deb {uri} {suite}{s[len(codename) :]} {comps}" for uri, s, comps in debian_entries()]
    if not lines:
        raise EngineError(f"no Debian mirror for '{codename}' in /etc/apt/sources.list(.d)")
    return list(dict.fromkeys(lines))


def plugins_work(state: State) -> bool:
    version = docker(state, "compose", "version", check=False).stdout
    return bool(re.search(r"version v?2\.", version)) and (
        docker(state, "buildx", "version", check=False).returncode == 0
    )


def install_plugins(state: State) -> None:
    """Compose v2 and buildx as CLI plugins in our DOCKER_CONFIG, from the Debian mirror.

    Downloaded with apt through a private sources list and package lists (the system's apt state
    is untouched), checked against the release's signed index like any apt download, unpacked."""
    uri = next((u for u, s, _ in debian_entries() if "security" not in s), None)
    if uri is None:
        raise EngineError("no Debian mirror in /etc/apt/sources.list(.d) to fetch plugins from")
    plugin_dir = state.config_dir / "cli-plugins"
    plugin_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=state.root) as scratch:
        apt_dir = Path(scratch)
        (apt_dir / "sources.list").write_text(f"deb {uri} {PLUGIN_SUITE} main\n")
        for sub in ("parts", "lists/partial", "cache/archives/partial", "debs", "unpacked"):
            (apt_dir / sub).mkdir(parents=True)
        options = [
            f"-oDir::Etc::SourceList={apt_dir / 'sources.list'}",
            f"-oDir::Etc::SourceParts={apt_dir / 'parts'}",
            f"-oDir::State::Lists={apt_dir / 'lists'}",
            f"-oDir::Cache={apt_dir / 'cache'}",
            "-oDebug::NoLocking=1",
            "-oAPT::Sandbox::User=root",
        ]
        run(["apt-get", "-qq", *options, "update"])
        run(["apt-get", "-qq", *options, "download", *PLUGINS], cwd=apt_dir / "debs")
        for deb in (apt_dir / "debs").glob("*.deb"):
            run(["dpkg-deb", "-x", str(deb), str(apt_dir / "unpacked")])
        for name in PLUGINS:
            binary = apt_dir / "unpacked/usr/libexec/docker/cli-plugins" / name
            shutil.copy2(binary, plugin_dir / name)


@exclusive
def install(state: State) -> None:
    """Debian's docker.io, iptables and mmdebstrap, plus the compose v2 and buildx plugins."""
    if shutil.which("apt-get") is None:
        raise EngineError("apt-get not found: install Docker yourself and set MLOPS_DOCKER_HOST")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if missing := missing_packages():
        print(f"==> apt-get install {' '.join(missing)} (about 15 s)", flush=True)
        run(["apt-get", "update", "-qq"], env=env)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)
    (state.root / "bin").mkdir(parents=True, exist_ok=True)
    link = state.root / "bin" / "docker"
    if not link.is_symlink() or link.readlink() != DOCKER_CLI:
        link.unlink(missing_ok=True)
        link.symlink_to(DOCKER_CLI)
    if not plugins_work(state):
        print(f"==> compose v2 and buildx plugins from Debian {PLUGIN_SUITE} (about 5 s)")
        install_plugins(state)
        if not plugins_work(state):
            raise EngineError(f"the {PLUGIN_SUITE} compose/buildx plugins do not run here")


# --- start / stop ----------------------------------------------------------------------------


def ping(state: State, timeout: float = 2.0) -> bool:
    """Whether our dockerd answers its API's /_ping on the socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(timeout)
            client.connect(str(state.socket))
            client.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return client.recv(64).split(b"\r\n")[0].endswith(b" 200 OK")
    except OSError:
        return False


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        state_line = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return []
    return [] if state_line == "Z" else raw.decode(errors="replace").split("\0")


def alive(pid: int) -> bool:
    """Whether pid runs (zombies count as gone; our own children are reaped)."""
    if pid in _CHILDREN and _CHILDREN[pid].poll() is not None:
        del _CHILDREN[pid]
    return bool(cmdline(pid))


def our_pid(state: State) -> int | None:
    """The pid of the dockerd we started with this state folder, if it still runs."""
    try:
        pid = int(state.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if f"--pidfile={state.pidfile}" in cmdline(pid) else None


def foreign_dockerds(state: State) -> list[int]:
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [
        pid
        for pid in pids
        if (args := cmdline(pid)) and Path(args[0]).name == "dockerd" and pid != our_pid(state)
    ]


def host_snapshot() -> dict:
    """The host settings dockerd changes and `stop` gives back."""
    forward = run(["iptables", "-S", "FORWARD"], False).stdout.split("\n")[0].split()
    return {
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
        "forward_policy": forward[2] if forward[:2] == ["-P", "FORWARD"] else None,
    }


def wait_until(condition, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


@exclusive
def start(state: State) -> bool:
    """Start our dockerd unless it already answers; True if this call started it."""
    if (pid := our_pid(state)) is not None:
        if wait_until(lambda: ping(state), READY_TIMEOUT):
            return False
        raise EngineError(f"our dockerd (pid {pid}) runs but does not answer: `stop` it")
    if not DOCKERD.exists():
        raise EngineError(f"{DOCKERD} not found: run `python3 tools/docker_engine.py install`")
    if others := foreign_dockerds(state):
        raise EngineError(f"another dockerd runs (pid {others[0]}): stop it, or use it instead")
    if len(str(state.exec_root / "containerd/containerd.sock.ttrpc")) > 100:
        raise EngineError(f"state folder path too long for unix sockets: {state.root}")
    state.root.mkdir(parents=True, exist_ok=True)
    if not state.host_before.exists():  # kept from an unfinished run: it has the true values
        state.host_before.write_text(json.dumps(host_snapshot()))
    daemon_json = state.root / "daemon.json"  # ours, so /etc/docker/daemon.json cannot interfere
    daemon_json.write_text("{}\n")
    route = run(["ip", "-o", "route", "show", "default"], False).stdout.split()
    device = route[route.index("dev") + 1] if "dev" in route else "lo"
    mtu_file = Path(f"/sys/class/net/{device}/mtu")
    # Containers' packets must fit the host's uplink (1400 on some VMs) or TLS handshakes stall.
    mtu = min(int(mtu_file.read_text()), 1500) if mtu_file.exists() else 1500
    command = [
        str(DOCKERD),
        f"--config-file={daemon_json}",
        f"--data-root={state.root / 'data'}",
        f"--exec-root={state.exec_root}",
        f"--pidfile={state.pidfile}",
        f"--host={state.docker_host}",
        "--storage-driver=overlay2",
        "--exec-opt=native.cgroupdriver=cgroupfs",
        f"--mtu={mtu}",
        "--shutdown-timeout=5",
    ]
    # dockerd finds containerd, runc, docker-proxy and docker-init on its PATH.
    env = {**os.environ, "PATH": f"/usr/sbin:/usr/bin:/sbin:/bin:{os.environ.get('PATH', '')}"}
    with open(state.root / "dockerd.log", "wb") as log:  # this run's log only
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
    _CHILDREN[process.pid] = process
    if wait_until(lambda: ping(state) or process.poll() is not None, READY_TIMEOUT):
        if process.poll() is None:
            remove_leftover_containers(state)
            return True
        tail = (state.root / "dockerd.log").read_text().strip().splitlines()[-1:]
        problem = f"dockerd exited: {tail[0] if tail else 'no log'}"
    else:
        problem = f"dockerd did not answer in {READY_TIMEOUT:.0f} s: see {log.name}"
    terminate(process.pid, STOP_TIMEOUT)
    clean_up(state)
    raise EngineError(problem)


def remove_leftover_containers(state: State) -> None:
    """Containers of a run that ended before its teardown (killed, timed out) come back with a
    new dockerd when compose gave them a restart policy: nothing but tests uses this engine, so
    any container there at start is such a leftover, removed with its anonymous volumes."""
    listed = docker(state, "ps", "--all", "--quiet", check=False).stdout.split()
    if listed:
        docker(state, "rm", "--force", "--volumes", *listed, check=False)
        print(f"removed {len(listed)} container(s) left by an unfinished run", file=sys.stderr)


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM, a bounded wait, then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_until(lambda: not alive(pid), wait):
            return
    raise EngineError(f"process {pid} survived SIGKILL")


def source(words: list[str]) -> ipaddress.IPv4Network | None:
    """The source network of an `iptables -S` rule, if it names one."""
    if "-s" not in words:
        return None
    return ipaddress.ip_network(words[words.index("-s") + 1], strict=False)


def clean_host(before: dict) -> None:
    """Remove the bridges and iptables rules dockerd leaves behind; restore what it changed."""
    links = run(["ip", "-o", "link", "show", "type", "bridge"], False).stdout.splitlines()
    bridges = {line.split(":")[1].strip().split("@")[0] for line in links}
    bridges = {name for name in bridges if DOCKER_BRIDGE.match(name)} | {"docker0"}
    for name in bridges:
        run(["ip", "link", "delete", name], False)
    for table in ("filter", "nat"):
        listing = run(["iptables", "-t", table, "-S"], False).stdout.splitlines()
        chains = [c for c in DOCKER_CHAINS if f"-N {c}" in listing]
        rules = [words for line in listing if (words := shlex.split(line))[:1] == ["-A"]]
        # The bridges' subnets, to find the per-port hairpin rules, which name no bridge.
        subnets = {source(words) for words in rules if set(words) & bridges} - {None}
        for words in rules:
            if words[1] in DOCKER_CHAINS:
                continue  # flushed with its chain
            address = source(words)
            in_subnet = address is not None and any(address.subnet_of(n) for n in subnets)
            if set(words) & (set(DOCKER_CHAINS) | bridges) or in_subnet:
                run(["iptables", "-t", table, "-D", *words[1:]], False)
        for flag in ("-F", "-X"):
            for chain in chains:
                run(["iptables", "-t", table, flag, chain], False)
    if before.get("forward_policy"):
        run(["iptables", "-P", "FORWARD", before["forward_policy"]], False)
    if before.get("ip_forward"):
        Path("/proc/sys/net/ipv4/ip_forward").write_text(before["ip_forward"] + "\n")
    for parent in cgroups("docker"):  # dockerd's parent cgroup, BuildKit's step groups in it
        for folder, _, _ in os.walk(parent, topdown=False):  # only empty ones can go
            with contextlib.suppress(OSError):
                os.rmdir(folder)


def cgroups(name: str) -> list[Path]:
    """The folders of cgroup `name` in every v1 controller, or in the v2 hierarchy."""
    return [*CGROUP_ROOT.glob(name), *CGROUP_ROOT.glob(f"*/{name}")]


def cgroup_members(groups: list[Path]) -> set[int]:
    found = set()
    for group in groups:
        with contextlib.suppress(OSError):
            found |= {int(pid) for pid in (group / "cgroup.procs").read_text().split()}
    return found


def kill_containers(state: State) -> None:
    """Kill what still runs in our containers' cgroups: a dockerd killed hard leaves them to the
    kernel. Container ids come from our data-root, so no other daemon's container is touched."""
    folder = state.root / "data" / "containers"
    for container in folder.iterdir() if folder.exists() else []:
        groups = cgroups(f"docker/{container.name}")
        for pid in cgroup_members(groups):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_until(lambda groups=groups: not cgroup_members(groups), 10.0)
        for group in groups:
            with contextlib.suppress(OSError):
                group.rmdir()


@exclusive
def stop(state: State) -> bool:
    """Stop our dockerd and clean up after it; True if it was running. Others are left alone."""
    pid = our_pid(state)
    if pid is not None:
        terminate(pid, STOP_TIMEOUT)
    clean_up(state)
    return pid is not None


def clean_up(state: State) -> None:
    """What a stopped dockerd of ours leaves: processes, mounts, bridges, iptables rules."""
    kill_containers(state)
    # containerd and shims it started, if it died without stopping them.
    for leftover in [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]:
        if any(str(state.exec_root) in arg for arg in cmdline(leftover)):
            terminate(leftover, 10.0)
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{state.root}/")), reverse=True):
        if run(["umount", mount], False).returncode != 0:
            run(["umount", "--lazy", mount], False)
    if state.host_before.exists() and not foreign_dockerds(state):
        clean_host(json.loads(state.host_before.read_text()))
        state.host_before.unlink()
    for path in (state.pidfile, state.socket):
        path.unlink(missing_ok=True)


# --- base image ------------------------------------------------------------------------------


def pyenv_python(python: str) -> Path:
    """The newest pyenv build of `python` on this machine (its prefix folder)."""
    builds = sorted(
        PYENV_VERSIONS.glob(f"{python}.*"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.name)],
    )
    builds = [b for b in builds if (b / "bin" / f"python{python}").is_file()]
    if not builds:
        raise EngineError(f"no Debian release has Python {python}, and pyenv has not built it here")
    return builds[-1]


def pyenv_options(python: str) -> list[str]:
    """mmdebstrap's hooks that install pyenv's `python` into /usr/local, trimmed and stripped."""
    lib = f'"$1"/usr/local/lib/python{python}'
    unneeded = ("test", "idlelib", "tkinter", "turtledemo", f"config-{python}-*", "site-packages/*")
    return [
        f"--customize-hook=sync-in {pyenv_python(python)} /usr/local",
        "--customize-hook=rm -rf " + " ".join(f"{lib}/{name}" for name in unneeded),
        # Debug symbols are two thirds of the library; strip is binutils', absent is harmless.
        '--customize-hook=command -v strip >/dev/null || exit 0; find "$1"/usr/local -type f '
        "-name '*.so*' -exec strip --strip-unneeded {} + "
        f'&& strip "$1"/usr/local/bin/python{python}',
        '--customize-hook=chroot "$1" ldconfig',
    ]


def base_recipe(python: str) -> tuple[list[str], str]:
    """mmdebstrap's options for the base image, and a short id of everything that shapes it."""
    suite = PYTHON_SUITES.get(python) or PYENV_PYTHONS[python]
    include = "python3,python3-venv" if python in PYTHON_SUITES else PYENV_LIBRARIES
    certificates = sorted(LOCAL_CA_DIR.rglob("*.crt")) if LOCAL_CA_DIR.exists() else []
    apt_clean = (  # what Debian's official images ship as docker-clean: no apt caches in layers
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    )
    apt_clean_path = '"$1/etc/apt/apt.conf.d/docker-clean"'
    options = [
        "--variant=minbase",
        f"--include={include},ca-certificates",
        # merged /usr by symlinks as debootstrap does; the usrmerge package would pull in perl.
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        *(f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "info", "locale")),
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        f"--customize-hook=printf '%s' {shlex.quote(apt_clean)} > {apt_clean_path}",
        '--customize-hook=rm -f "$1"/var/cache/apt/*.bin',
    ]
    if certificates:
        options += [
            f"--customize-hook=sync-in {LOCAL_CA_DIR} {LOCAL_CA_DIR}",
            '--customize-hook=chroot "$1" update-ca-certificates',
        ]
    if python in PYENV_PYTHONS:
        options += pyenv_options(python)
        if certificates:  # Debian's pip reads the system's CAs; pyenv's, its own bundle
            pip_conf = shlex.quote("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
            options.append(f'--customize-hook=printf {pip_conf} > "$1"/etc/pip.conf')
    digest = hashlib.sha256(json.dumps([suite, options]).encode())
    for certificate in certificates:
        digest.update(certificate.read_bytes())
    return options, digest.hexdigest()[:12]


@exclusive
def base_image(state: State, python: str = "3.11") -> str:
    """Build (or re-import from its cached tarball) local/python:<python>; return its name."""
    if python not in {**PYTHON_SUITES, **PYENV_PYTHONS}:
        choices = ", ".join(sorted({**PYTHON_SUITES, **PYENV_PYTHONS}))
        raise EngineError(f"no base image for Python {python}: choose {choices}")
    if not ping(state):
        raise EngineError("our dockerd is not running: run `python3 tools/docker_engine.py start`")
    image = f"{IMAGE_REPOSITORY}:{python}"
    options, recipe = base_recipe(python)
    label_format = f'{{{{index .Config.Labels "{RECIPE_LABEL}"}}}}'
    label = docker(state, "image", "inspect", "-f", label_format, image, check=False)
    if label.returncode == 0 and label.stdout.strip() == recipe:
        return image
    images = state.root / "images"
    images.mkdir(parents=True, exist_ok=True)
    tarball = images / f"python-{python}-{recipe}.tar"
    if not tarball.exists():
        suite = PYTHON_SUITES.get(python) or PYENV_PYTHONS[python]
        print(f"==> mmdebstrap: Debian {suite} with Python {python} (about 45 s)", flush=True)
        partial = images / f"unfinished-python-{python}.tar"
        command = ["mmdebstrap", *options, suite, str(partial), *mirror_lines(suite)]
        with open(images / f"python-{python}.log", "w") as log:
            try:
                done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=900)
            except subprocess.TimeoutExpired as error:
                raise EngineError(f"mmdebstrap took over 900 s: see {log.name}") from error
        if done.returncode != 0:
            raise EngineError(f"mmdebstrap failed: see {log.name}")
        for old in images.glob(f"python-{python}-*.tar"):
            old.unlink()  # older recipes: superseded
        partial.rename(tarball)
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        f"LABEL {RECIPE_LABEL}={recipe}",
        'CMD ["python3"]',
    ]
    flags = [arg for change in changes for arg in ("--change", change)]
    print(f"==> docker import {tarball.name} as {image} (about 6 s)", flush=True)
    docker(state, "import", *flags, str(tarball), image)
    return image


# --- status / command line -------------------------------------------------------------------


def status(state: State) -> str:
    pid = our_pid(state)
    running = f"pid {pid}, {'answering' if ping(state) else 'NOT answering'}" if pid else "no"
    lines = [f"state folder   {state.root}", f"our dockerd    {running} ({state.docker_host})"]
    if DOCKER_CLI.exists():
        lines.append(f"docker CLI     {DOCKER_CLI} ({docker(state, '--version').stdout.strip()})")
        lines.append(f"compose        {docker(state, 'compose', 'version', check=False).stdout}")
    if pid and ping(state):
        listing_format = "{{.Repository}}:{{.Tag}} {{.Size}}"
        listing = docker(state, "images", IMAGE_REPOSITORY, "--format", listing_format).stdout
        lines.append(f"base images    {', '.join(listing.splitlines()) or 'none'}")
    tarballs = sorted((state.root / "images").glob("*.tar"))
    lines.append(f"cached tars    {', '.join(t.name for t in tarballs) or 'none'}")
    lines.append(f"other dockerd  {', '.join(map(str, foreign_dockerds(state))) or 'none'}")
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = ["install", "start", "base-image", "stop", "status", "env"]
    parser.add_argument("command", choices=commands)
    parser.add_argument(
        "--python", choices=sorted({**PYTHON_SUITES, **PYENV_PYTHONS}), default="3.11"
    )
    parser.add_argument(
        "--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="default: $MLOPS_DOCKER_STATE"
    )
    args = parser.parse_args(argv)
    state = State(args.state_dir.resolve())
    try:
        if args.command == "install":
            install(state)
        elif args.command == "start":
            started = start(state)
            print(f"{'started' if started else 'already running'}: DOCKER_HOST={state.docker_host}")
        elif args.command == "base-image":
            print(base_image(state, args.python))
        elif args.command == "stop":
            print("stopped" if stop(state) else "was not running (cleaned up anyway)")
        elif args.command == "status":
            print(status(state))
        else:
            for key, value in docker_env(state).items():
                print(f"export {key}={shlex.quote(value)}")
    except EngineError as error:
        print(f"docker_engine {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
