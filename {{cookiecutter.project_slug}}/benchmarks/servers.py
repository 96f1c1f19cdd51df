"""Servers for the serving benchmark: start one, load it with wrk, measure it.

`launch` starts a server in its own process group, waits until it is ready, checks one answer,
warms it up and waits until it has finished the warm-up's requests; `load` runs wrk against it
once and reads, from /proc, the CPU time and the peak memory of its whole process tree (MLflow
forks a uvicorn process); `measure` does both for a server measured once; `free_port` and
`stop_group` take a port and stop a server's process group (the slow tests' tests/served.py uses
them too). Used by benchmarks/serving.py, which decides what to compare and how often. Needs wrk
(`apt-get install wrk`) and Linux's /proc.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, fields
from pathlib import Path
from statistics import median

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# How long wrk waits for an answer before it counts a timeout (its default is 2 s). MLflow takes
# about 150 ms for one picture of 784 pixel columns: the 16 connections' requests queue for
# 2.4 s, so with the default every one timed out and MLflow read as 0 requests a second.
WRK_TIMEOUT = "60s"


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_group(process: subprocess.Popen, seconds: float = 30) -> None:
    """Stop the process group that `process` leads (uvicorn's workers, MLflow's uvicorn child):
    SIGTERM, then SIGKILL if it has not exited after `seconds`."""
    for signal_number, wait in ((signal.SIGTERM, seconds), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, signal_number)
        except ProcessLookupError:
            return  # gone already
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class Server:
    name: str
    command: list[str]
    ready_url: str
    predict_url: str
    body: bytes
    env: dict[str, str]
    content_type: str = "application/json"


@dataclass
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float
    peak_rss_mb: float
    ready_seconds: float


def median_result(results: list[Result]) -> Result:
    """Each figure's median over rounds (figures of one server, measured several times); the
    memory's peak over all of them."""
    values = {
        field.name: median(getattr(r, field.name) for r in results)
        for field in fields(Result)
        if field.name not in ("name", "errors", "peak_rss_mb")
    }
    return Result(
        name=results[0].name,
        errors=sum(r.errors for r in results),
        peak_rss_mb=max(r.peak_rss_mb for r in results),
        **values,
    )


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (MLflow forks a uvicorn process)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    family, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in family]
        family.update(children)
        frontier.extend(children)
    return sorted(family)


def tree_rss_mb(root: int) -> float:
    """Resident memory of the process tree of `root`, in MB."""
    total = 0
    for pid in process_tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        total += int(rss.group(1)) if rss else 0
    return total / 1024


def tree_cpu_seconds(root: int) -> float:
    """CPU time (user + system) used so far by the process tree of `root`."""
    ticks = 0
    for pid in process_tree(root):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(stat[11]) + int(stat[12])  # utime, stime
    return ticks / CLOCK_TICKS


class PeakMemory(threading.Thread):
    """Samples the process tree's RSS every 100 ms and keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0.0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, tree_rss_mb(self.pid))
            time.sleep(0.1)

    def stop(self) -> float:
        self.running = False
        self.join()
        return self.peak


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 180) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} was not ready after {timeout} s")


def wait_idle(pid: int, timeout: float = 60) -> None:
    """Wait until the process tree of `pid` uses under a tenth of a core. A server goes on with
    the requests it had received when wrk stopped: MLflow's queue of 16 pictures is 2 s of work,
    which would otherwise fall into its measured load."""
    start = time.perf_counter()
    used = tree_cpu_seconds(pid)
    while time.perf_counter() - start < timeout:
        time.sleep(0.2)
        before, used = used, tree_cpu_seconds(pid)
        if used - before < 0.02:
            return


def check_answer(server: Server) -> None:
    request = urllib.request.Request(
        server.predict_url, data=server.body, headers={"content-type": server.content_type}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 200:
            raise RuntimeError(f"{server.name} answered {response.status}")


def to_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def lua_string(data: bytes) -> str:
    """`data` as a Lua string literal: any byte (a picture's too) as a decimal escape."""
    return '"' + "".join(f"\\{byte:03d}" for byte in data) + '"'


def run_wrk(server: Server, seconds: int, connections: int, folder: Path) -> dict:
    script = folder / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f'wrk.headers["Content-Type"] = {lua_string(server.content_type.encode())}\n'
        f"wrk.body = {lua_string(server.body)}\n"
    )
    loads = ["-t2", f"-c{connections}", f"-d{seconds}s", f"--timeout={WRK_TIMEOUT}"]
    done = subprocess.run(
        ["wrk", *loads, "--latency", "-s", str(script), server.predict_url],
        capture_output=True,
        text=True,
        check=True,
    )
    output = done.stdout
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)", output, re.MULTILINE))
    requests = re.search(r"(\d+) requests in", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    timeouts = re.search(r"Socket errors: .*timeout (\d+)", output)
    if socket_errors:
        print(f"  wrk: socket errors {socket_errors.group(1)}")
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": to_ms(percentiles["50"]),
        "p99_ms": to_ms(percentiles["99"]),
        # An unanswered request fails the figures as a non-2xx answer does.
        "errors": sum(int(found.group(1)) for found in (errors, timeouts) if found),
        "requests": int(requests.group(1)) if requests else 0,
    }


@dataclass
class Running:
    """A server started by `launch`: stop it with `stop_group(running.process)`."""

    server: Server
    process: subprocess.Popen
    ready_seconds: float
    peak_rss_mb: float  # so far: memory is sampled during the warm-up and each load


def launch(server: Server, connections: int, folder: Path) -> Running:
    """Start `server`, wait until it is ready, check one answer and warm it up (2 s of load)."""
    print(f"- {server.name}: starting")
    process = subprocess.Popen(
        server.command,
        env=server.env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so the whole tree stops with it
    )
    memory = PeakMemory(process.pid)
    memory.start()
    try:
        ready = wait_ready(server.ready_url, process)
        check_answer(server)
        run_wrk(server, 2, connections, folder)
        wait_idle(process.pid)
    except BaseException:
        stop_group(process)
        raise
    finally:
        peak = memory.stop()
    return Running(server, process, ready, peak)


def load(running: Running, seconds: int, connections: int, folder: Path) -> Result:
    """One measured load of a running server. Only the server under load has its memory sampled:
    a sampler reads /proc and takes CPU from the server."""
    server, pid = running.server, running.process.pid
    memory = PeakMemory(pid)
    memory.start()
    try:
        cpu_before = tree_cpu_seconds(pid)
        figures = run_wrk(server, seconds, connections, folder)
        cpu = tree_cpu_seconds(pid) - cpu_before
    finally:
        running.peak_rss_mb = max(running.peak_rss_mb, memory.stop())
    requests = figures.pop("requests")
    result = Result(
        name=server.name,
        peak_rss_mb=running.peak_rss_mb,
        ready_seconds=running.ready_seconds,
        cpu_us_per_request=1e6 * cpu / requests if requests else float("nan"),
        **figures,
    )
    print(
        f"  {server.name}: {result.requests_per_second:.0f} req/s, p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms, {result.cpu_us_per_request:.0f} us CPU per request, "
        f"peak RSS {result.peak_rss_mb:.0f} MB, ready in {result.ready_seconds:.2f} s"
    )
    return result


def measure(server: Server, seconds: int, connections: int, folder: Path) -> Result:
    """Start `server`, load it once, stop it."""
    running = launch(server, connections, folder)
    try:
        return load(running, seconds, connections, folder)
    finally:
        stop_group(running.process)
