"""The serving benchmark's targets and its report: each target met or missed, with its figures.

A `Target` is a ratio between two servers' figures that must reach a threshold. When both
servers took turns in rounds, its value is the median of the ratios within each round, on which a
drift of the machine's speed weighs little; `report` writes the figures, the targets and how far
those ratios spread from round to round as Markdown, with a warning on each target that lies
inside the middle half of its ratios: one run cannot tell whether it is met. Used by
benchmarks/serving.py.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import median, quantiles

from servers import Result


@dataclass(frozen=True)
class Target:
    """One target of the issue: `ratio` (`subject` against `reference`) must reach `needed`."""

    key: str
    title: str
    reference: str  # "mlflow" or "floor"
    metric: str  # a field of Result
    higher_is_better: bool
    needed: float  # the ratio, better-over-worse, that meets the target; 0: a figure, no target
    wording: str
    subject: str = "ours"  # this service, or one of its variants


def cpu_model() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return found.group(1).strip() if found else platform.processor() or "unknown CPU"


def ratio_text(target: Target, value: float) -> str:
    """`value` (better over worse) as the target words it: 94x, 66%, 1/118."""
    if target.reference != "mlflow":
        return f"{100 * value:.1f}%"  # one decimal: 69.6% must not read as the 70% it misses
    number = f"{value:.0f}" if value >= 10 else f"{value:.1f}"
    return f"{number}x" if target.higher_is_better else f"1/{number}"


FIGURE_FORMATS = {
    "requests_per_second": "{:,.0f} req/s",
    "p99_ms": "{:,.1f} ms",
    "peak_rss_mb": "{:,.0f} MB",
    "ready_seconds": "{:,.2f} s",
}


def figure(metric: str, value: float) -> str:
    return FIGURE_FORMATS[metric].format(value)


def better_over_worse(target: Target, subject: Result, reference: Result) -> float:
    mine, theirs = getattr(subject, target.metric), getattr(reference, target.metric)
    better, worse = (mine, theirs) if target.higher_is_better else (theirs, mine)
    return better / worse if worse else float("inf")  # a server that answered nothing


def round_ratios(target: Target, rounds_of: dict[str, list[Result]]) -> list[float]:
    """The target's ratio within each round, when both its servers took turns in the rounds."""
    subjects, references = rounds_of.get(target.subject), rounds_of.get(target.reference)
    if not (subjects and references):
        return []
    pairs = zip(subjects, references, strict=True)
    return [better_over_worse(target, subject, reference) for subject, reference in pairs]


def target_ratio(
    target: Target, results: dict[str, Result], rounds_of: dict[str, list[Result]]
) -> float:
    """The median of the ratios within each round when both servers took turns in the rounds
    (the machine's speed drifts between rounds more than the costs measured); else the ratio of
    the two medians."""
    ratios = round_ratios(target, rounds_of)
    if ratios:
        return median(ratios)
    return better_over_worse(target, results[target.subject], results[target.reference])


def report(
    targets: list[Target], results: dict[str, Result], rounds_of: dict[str, list[Result]],
    model: str, seconds: tuple[int, int], connections: int, rounds: int,
    load: tuple[tuple[float, ...], tuple[float, ...]],
) -> str:  # fmt: skip
    ours = results["ours"]
    lines = [
        "# Serving benchmark",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores ({cpu_model()}); "
        f"load average {load[0][0]:.2f} before, {load[1][0]:.2f} after; model {model}.",
        f"wrk, {connections} connections, one single-record POST body, after a 2 s warm-up (and "
        "until the server has finished its requests); "
        "each server has one uvicorn worker and the same options; wrk shares the cores. "
        f"MLflow is measured alone, once, for {seconds[1]} s. The other servers run side by side, "
        f"all idle but the one under load, in loads of {seconds[0]} s for {rounds} rounds (every "
        "other round in reverse order): their "
        "figures are medians over rounds, the ratios between them medians of the ratios within "
        "each round.",
        "",
        "| server | req/s | p50 ms | p99 ms | failed | CPU us/request | peak RSS MB | ready s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results.values():
        lines.append(
            f"| {r.name} | {r.requests_per_second:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.errors} | {r.cpu_us_per_request:,.0f} | {r.peak_rss_mb:.0f} | "
            f"{r.ready_seconds:.2f} |"
        )
    lines += [
        "",
        "| target | this service | reference | ratio | needed | met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    missed = []
    for target in targets:
        reference = results[target.reference]
        subject = results[target.subject]
        mine, theirs = getattr(subject, target.metric), getattr(reference, target.metric)
        value = target_ratio(target, results, rounds_of)
        met = value >= target.needed
        if subject.errors or reference.errors:  # a server that failed requests: no verdict
            verdict = "**not valid**"
        elif not target.needed:
            verdict = "(no target)"
        elif met:
            verdict = "met"
        else:
            verdict = "**missed**"
            missed.append((target, mine, theirs, value))
        lines.append(
            f"| {target.title} | {figure(target.metric, mine)} | "
            f"{figure(target.metric, theirs)} | {ratio_text(target, value)} | {target.wording} | "
            f"{verdict} |"
        )
    spreads = [
        (target, sorted(ratios))
        for target in targets
        if len(ratios := round_ratios(target, rounds_of)) >= 4
    ]
    if spreads:
        lines += ["", "How much the ratios moved from round to round:", ""]
        for target, ratios in spreads:
            quartiles = quantiles(ratios, n=4)
            lines.append(
                f"- {target.title}: middle half {ratio_text(target, quartiles[0])} to "
                f"{ratio_text(target, quartiles[2])}, all {ratio_text(target, ratios[0])} to "
                f"{ratio_text(target, ratios[-1])}."
            )
            if quartiles[0] < target.needed < quartiles[2]:
                lines[-1] += (
                    f" The target ({target.wording}) is inside the middle half: this run alone "
                    "cannot tell whether it is met; run again when the machine is quieter."
                )
    mlflow = results["mlflow"]
    memory = mlflow.peak_rss_mb / ours.peak_rss_mb
    startup = mlflow.ready_seconds / ours.ready_seconds
    lines += [
        "",
        f"Also: peak RSS {ours.peak_rss_mb:,.0f} MB against MLflow's {mlflow.peak_rss_mb:,.0f} MB "
        f"(1/{memory:.1f}), ready after {ours.ready_seconds:.2f} s against "
        f"{mlflow.ready_seconds:.2f} s (1/{startup:.1f}).",
    ]
    if missed:
        lines += ["", "## Missed", ""]
        for target, mine, theirs, value in missed:
            lines.append(
                f"- {target.title}: {figure(target.metric, mine)} against "
                f"{figure(target.metric, theirs)}, {ratio_text(target, value)} where "
                f"{target.wording} is needed."
            )
            if target.key == "floor":
                floor = results["floor"]
                lines.append(
                    f"  The server is CPU-bound: {results[target.subject].cpu_us_per_request:,.0f} "
                    "us of CPU per "
                    f"request here against {floor.cpu_us_per_request:,.0f} us for the constant "
                    "endpoint, which neither validates the record, nor runs the model, nor "
                    "builds an answer from it. That work, not waiting, is the gap; on a shared "
                    "2-core machine the ratio also moves by several points from run to run."
                )
    errors = [r.name for r in results.values() if r.errors]
    if errors:
        lines += [
            "",
            f"Failed requests (non-2xx answers or wrk's timeouts) from {', '.join(errors)}: their "
            "figures, and the targets judged on them, are not valid.",
        ]
    return "\n".join(lines) + "\n"
