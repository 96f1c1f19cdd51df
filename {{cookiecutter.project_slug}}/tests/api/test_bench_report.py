"""The serving benchmark's report (benchmarks/report.py), from made-up figures: each target met or
missed on the median of its rounds, and a warning where one run cannot tell."""

from __future__ import annotations

from dataclasses import replace

from report import Target, report
from servers import Result

TARGETS = [
    Target("steady", "throughput, steady variant", "reference", "requests_per_second", True,
           0.90, "at least 90%", subject="steady"),
    Target("noisy", "throughput, noisy variant", "reference", "requests_per_second", True,
           0.90, "at least 90%", subject="noisy"),
]  # fmt: skip
BASE = Result(
    name="server",
    requests_per_second=1000.0,
    p50_ms=5.0,
    p99_ms=10.0,
    errors=0,
    cpu_us_per_request=300.0,
    peak_rss_mb=100.0,
    ready_seconds=1.0,
)


def rounds(*throughputs: float) -> list[Result]:
    return [replace(BASE, requests_per_second=value) for value in throughputs]


def written(rounds_of: dict[str, list[Result]], targets: list[Target] = TARGETS) -> str:
    results = {key: found[len(found) // 2] for key, found in rounds_of.items()}
    results |= {"ours": BASE, "mlflow": BASE}
    return report(targets, results, rounds_of, "model version 1", (2, 5), 16, 8, ((0.5,), (0.7,)))


def test_each_target_is_judged_on_the_median_of_its_rounds_and_noise_is_flagged():
    text = written(
        {
            "reference": rounds(*[1000.0] * 8),
            "steady": rounds(940, 950, 930, 960, 945, 955, 935, 945),
            # Round ratios from 80% to 99%: the median meets 90%, the middle half holds it too.
            "noisy": rounds(800, 990, 850, 950, 880, 920, 900, 960),
        }
    )
    lines = text.splitlines()
    [steady] = [line for line in lines if line.startswith("| throughput, steady variant |")]
    [noisy] = [line for line in lines if line.startswith("| throughput, noisy variant |")]
    assert "| 94.5% | at least 90% | met |" in steady
    assert "| 91.0% | at least 90% | met |" in noisy
    [steady_spread] = [line for line in lines if line.startswith("- throughput, steady variant:")]
    [noisy_spread] = [line for line in lines if line.startswith("- throughput, noisy variant:")]
    assert "cannot tell" not in steady_spread
    assert "middle half 85.8% to 95.8%" in noisy_spread
    assert "this run alone cannot tell whether it is met" in noisy_spread


def test_a_target_missed_in_every_round_is_missed_without_doubt():
    text = written(
        {
            "reference": rounds(*[1000.0] * 8),
            "steady": rounds(800, 820, 810, 790, 805, 815, 800, 810),
            "noisy": rounds(*[950.0] * 8),
        }
    )
    [steady] = [line for line in text.splitlines() if line.startswith("| throughput, steady")]
    assert steady.endswith("| 80.8% | at least 90% | **missed** |")
    assert "cannot tell" not in text


def test_a_server_that_failed_requests_gives_no_verdict():
    # MLflow once timed out on every request (wrk's 2 s default): 0 req/s read as a huge "met".
    text = written(
        {
            "reference": [replace(BASE, requests_per_second=0.0, errors=16)] * 8,
            "steady": rounds(*[950.0] * 8),
            "noisy": rounds(*[950.0] * 8),
        }
    )
    [steady] = [line for line in text.splitlines() if line.startswith("| throughput, steady")]
    assert steady.endswith("| at least 90% | **not valid** |")
    assert "Failed requests (non-2xx answers or wrk's timeouts) from server" in text
    assert "## Missed" not in text


def test_a_figure_without_a_target_gets_no_verdict():
    # /explain against /predict is measured for its cost: no ratio is asked of it.
    figure = Target("figure", "throughput, a figure", "reference", "requests_per_second", True,
                    0.0, "a figure, no target", subject="steady")  # fmt: skip
    text = written(
        {"reference": rounds(*[1000.0] * 8), "steady": rounds(*[400.0] * 8)}, targets=[figure]
    )
    [row] = [line for line in text.splitlines() if line.startswith("| throughput, a figure |")]
    assert row.endswith("| 40.0% | a figure, no target | (no target) |")
    assert "## Missed" not in text
