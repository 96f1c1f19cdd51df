"""`make simulate-traffic`: play users of a running service, first as usual, then drifting.

Sends /predict requests built from rows drawn at random from the processed data (both splits,
so "normal" traffic looks like the training data): `--normal` of them as they are, then
`--shifted` with every other feature multiplied by `--shift` (kept inside its training range, as
a recalibrated instrument would read), then `--out-of-range` with one value far outside it, which
the service rejects with 422. (A few rows of the data may be outside the accepted range already:
they are rejected too.) Each request carries an X-Request-ID, and the true label of its row
goes to the ground-truth CSV under that id, as labels that arrive later would: `make drift` then
reports the fall in accuracy next to the drift. Afterwards, Prometheus and the dashboard show the
traffic, the predictions by class and the out-of-range values; `make drift` finds the drift.

Only the standard library: it runs wherever the project is installed.
"""

from __future__ import annotations

import csv
import json
import random
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import GROUND_TRUTH_FILE, TEST_FILE, TRAIN_FILE, display_path
from ..errors import PipelineError, reported

app = typer.Typer(add_completion=False, help=__doc__)

GROUND_TRUTH_COLUMNS = ["request_id", "position", "label"]


@dataclass
class Phase:
    """What one phase sent and how the service answered."""

    name: str
    answered: int = 0
    correct: int = 0
    rejected: int = 0
    labels: list[tuple[str, int, str]] = field(default_factory=list)  # ground truth

    def line(self) -> str:
        accuracy = f" (accuracy {self.correct / self.answered:.3f})" if self.answered else ""
        return f"{self.name}: {self.answered} answered{accuracy}, {self.rejected} rejected (422)"


class Service:
    """A running prediction service at `url`."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.url + path, timeout=self.timeout) as response:
                return json.load(response)
        except (OSError, ValueError) as error:
            raise PipelineError(
                f"no ready service at {self.url} ({error}): start one with `make serve` or "
                "`make up`, and check that /ready answers 200"
            ) from None

    def predict(self, record: dict[str, float], request_id: str) -> tuple[int, str | None]:
        """The status and the predicted label (None unless 200) of one record."""
        request = urllib.request.Request(
            self.url + "/predict",
            data=json.dumps(record).encode(),
            headers={"Content-Type": "application/json", "X-Request-ID": request_id},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, json.load(response)["label"]
        except urllib.error.HTTPError as error:
            error.close()
            return error.code, None


def shifted(record: dict[str, float], ranges: dict[str, tuple[float, float]], factor: float,
            ) -> dict[str, float]:  # fmt: skip
    """Every other feature multiplied by `factor`, kept inside its training range."""
    moved = dict(record)
    for name in list(record)[::2]:
        low, high = ranges[name]
        moved[name] = min(max(record[name] * factor, low), high)
    return moved


def out_of_range(record: dict[str, float], ranges: dict[str, tuple[float, float]],
                 rng: random.Random) -> dict[str, float]:  # fmt: skip
    """One feature set ten range widths above its training maximum."""
    name = rng.choice(list(record))
    low, high = ranges[name]
    return {**record, name: high + 10 * (high - low or 1)}


def send(service: Service, phase: Phase, records: list[tuple[dict[str, float], str]],
         rate: float) -> Phase:  # fmt: skip
    """Send `records` (with their true labels) at `rate` requests per second (0: at once)."""
    start = time.monotonic()
    for index, (record, label) in enumerate(records):
        if rate > 0:
            time.sleep(max(0.0, start + index / rate - time.monotonic()))
        request_id = uuid.uuid4().hex
        status, predicted = service.predict(record, request_id)
        if status == 200:
            phase.answered += 1
            phase.correct += predicted == label
            phase.labels.append((request_id, 0, label))
        elif status == 422:
            phase.rejected += 1
        else:
            raise PipelineError(f"{service.url}/predict answered {status}")
    return phase


def append_ground_truth(path: Path, labels: list[tuple[str, int, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.is_file()
    with path.open("a", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(GROUND_TRUTH_COLUMNS)
        writer.writerows(labels)


@app.command()
def main(
    url: Annotated[str, typer.Option(help="The running service")] = "http://127.0.0.1:8000",
    normal: Annotated[int, typer.Option(min=0, help="Requests like the training data")] = 300,
    shifted_count: Annotated[
        int, typer.Option("--shifted", min=0, help="Requests that drifted")
    ] = 300,
    shift: Annotated[float, typer.Option(help="Factor on every other feature, shifted")] = 1.5,
    out_of_range_count: Annotated[
        int, typer.Option("--out-of-range", min=0, help="Requests the service must reject")
    ] = 5,
    rate: Annotated[float, typer.Option(min=0, help="Requests per second (0: at once)")] = 20.0,
    seed: Annotated[int, typer.Option(help="Seed of the row sampling")] = 0,
    data: Annotated[list[Path] | None, typer.Option(help="CSVs to draw rows from")] = None,
    ground_truth: Path = GROUND_TRUTH_FILE,
) -> None:
    """Send normal, then shifted traffic, and record the true labels."""
    with reported("simulate-traffic"):
        service = Service(url)
        metadata = service.get("/model")
        ranges = {f["name"]: (f["min"], f["max"]) for f in metadata["features"]}
        target = metadata["target"]
        rows = []
        for path in data or [TRAIN_FILE, TEST_FILE]:
            try:
                with path.open(encoding="utf-8", newline="") as handle:
                    rows += [
                        ({name: float(row[name]) for name in ranges}, str(row[target]))
                        for row in csv.DictReader(handle)
                    ]
            except (OSError, KeyError, ValueError) as error:
                raise PipelineError(
                    f"cannot read the model's features from {path}: {error}"
                ) from None
        rng = random.Random(seed)
        total = normal + shifted_count + out_of_range_count
        pace = f"about {total / rate:.0f} s" if rate else "a few seconds"
        typer.echo(f"simulate-traffic: {total} requests to {service.url} ({pace})")
        phases = [
            send(service, Phase("normal"), rng.choices(rows, k=normal), rate),
            send(
                service,
                Phase(f"shifted x{shift:g}"),
                [
                    (shifted(r, ranges, shift), label)
                    for r, label in rng.choices(rows, k=shifted_count)
                ],
                rate,
            ),
            send(
                service,
                Phase("out of range"),
                [
                    (out_of_range(r, ranges, rng), label)
                    for r, label in rng.choices(rows, k=out_of_range_count)
                ],
                rate,
            ),
        ]
        labels = [label for phase in phases for label in phase.labels]
        append_ground_truth(ground_truth, labels)
    for phase in phases:
        typer.echo(f"simulate-traffic: {phase.line()}")
    typer.echo(
        f"simulate-traffic: {len(labels)} true labels added to {display_path(ground_truth)}; "
        "now `make drift`"
    )


if __name__ == "__main__":
    app()
