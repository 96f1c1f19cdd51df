"""`make simulate-traffic`: play users of a running service, first as usual, then drifting.

Sends /predict requests of rows drawn at random from both splits: `--normal` as they are, then
`--shifted` ones (see `shifted`), then `--out-of-range` ones, which the service rejects with 422
(a few rows of the data may be out of range already); for an image model, the test split's
pictures as uploads, then drifted copies, then refused ones (pictures.py). The true label of each
answered request goes to the ground-truth CSV under its X-Request-ID as soon as it is answered,
as labels that arrive later would, so a run stopped half-way keeps them: `make drift` then reports
the fall in accuracy next to the drift. Standard library only (Pillow for pictures): it runs
wherever the project is installed.
"""

from __future__ import annotations

import csv
import json
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import GROUND_TRUTH_FILE, PROJ_ROOT, TEST_FILE, TRAIN_FILE, display_path
from ..errors import PipelineError, reported

app = typer.Typer(add_completion=False, help=__doc__)

GROUND_TRUTH_COLUMNS = ["request_id", "position", "label"]
# What the shifted phase appends to a text feature: words the training data is unlikely to hold.
SHIFTED_TEXT = " (forwarded from the new intake form, translated automatically)"
# The answers to a request the service refuses for its content: out of range, or not a picture.
REJECTED = {413, 415, 422}


@dataclass
class Phase:
    """What one phase sent and how the service answered."""

    name: str
    answered: int = 0
    correct: int = 0
    rejected: int = 0

    def line(self) -> str:
        accuracy = f" (accuracy {self.correct / self.answered:.3f})" if self.answered else ""
        return f"{self.name}: {self.answered} answered{accuracy}, {self.rejected} rejected"


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

    def predict(self, body: tuple[bytes, str], request_id: str) -> tuple[int, str | None]:
        """The status and the predicted label (None unless 200) of one request: its body's bytes
        and their content type."""
        data, content_type = body
        request = urllib.request.Request(
            self.url + "/predict",
            data=data,
            headers={"Content-Type": content_type, "X-Request-ID": request_id},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, json.load(response)["label"]
        except urllib.error.HTTPError as error:
            error.close()
            return error.code, None


@dataclass(frozen=True)
class Inputs:
    """The served model's features, from its /model answer: numeric ones with their training
    ranges, category ones with their values, the text ones, and the image one."""

    numeric: dict[str, tuple[float, float]]
    categories: dict[str, list[str]]
    texts: list[str]
    images: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, model: dict[str, Any]) -> Inputs:
        features = model["features"]
        return cls(
            numeric={f["name"]: (f["min"], f["max"]) for f in features if f["kind"] == "numeric"},
            categories={f["name"]: f["categories"] for f in features if f["kind"] == "category"},
            texts=[f["name"] for f in features if f["kind"] == "text"],
            images=[f["name"] for f in features if f["kind"] == "image"],
        )

    def record(self, row: dict[str, str]) -> dict[str, Any]:
        """A request body from a CSV row: numbers for numeric features, strings for category and
        text ones; for an image, the file at the row's path (relative to the project root)."""
        record: dict[str, Any] = {name: float(row[name]) for name in self.numeric}
        record.update({name: row[name] or "" for name in [*self.categories, *self.texts]})
        if self.images:
            from .pictures import upload  # the image task's module

            record.update({name: upload(PROJ_ROOT / row[name]) for name in self.images})
        return record

    def body(self, record: dict[str, Any]) -> tuple[bytes, str]:
        """The request body of `record` and its content type: JSON, or a picture's upload."""
        if self.images:
            from .pictures import multipart  # the image task's module

            return multipart(record)
        return json.dumps(record).encode(), "application/json"


def shifted(record: dict[str, Any], inputs: Inputs, factor: float) -> dict[str, Any]:
    """Every other numeric feature multiplied by `factor`, kept inside its training range (as a
    recalibrated instrument would read); every other category feature set to its last value;
    every text with words appended."""
    moved = dict(record)
    for name in list(inputs.numeric)[::2]:
        low, high = inputs.numeric[name]
        moved[name] = min(max(record[name] * factor, low), high)
    for name in list(inputs.categories)[::2]:
        moved[name] = inputs.categories[name][-1]
    for name in inputs.texts:
        moved[name] = record[name] + SHIFTED_TEXT
    if inputs.images:
        from .pictures import shifted_upload  # the image task's module

        moved.update({name: shifted_upload(record[name], factor) for name in inputs.images})
    return moved


def out_of_range(record: dict[str, Any], inputs: Inputs, rng: random.Random) -> dict[str, Any]:
    """One numeric feature set ten range widths above its training maximum; a picture sent as a
    BMP file, a type the service refuses."""
    if inputs.images:
        from .pictures import unsupported_upload  # the image task's module

        return {name: unsupported_upload(record[name]) for name in inputs.images}
    name = rng.choice(list(inputs.numeric))
    low, high = inputs.numeric[name]
    return {**record, name: high + 10 * (high - low or 1)}


def send(service: Service, inputs: Inputs, phase: Phase, records: list[tuple[dict[str, Any], str]],
         rate: float, write_label: Callable[[tuple[str, int, str]], object]) -> Phase:  # fmt: skip
    """Send `records` at `rate` requests per second (0: at once); each answered one's true label
    is written at once."""
    start = time.monotonic()
    for index, (record, label) in enumerate(records):
        if rate > 0:
            time.sleep(max(0.0, start + index / rate - time.monotonic()))
        request_id = uuid.uuid4().hex
        status, predicted = service.predict(inputs.body(record), request_id)
        if status == 200:
            phase.answered += 1
            phase.correct += predicted == label
            write_label((request_id, 0, label))
        elif status in REJECTED:
            phase.rejected += 1
        else:
            raise PipelineError(f"{service.url}/predict answered {status}")
    return phase


@app.command()
def main(
    url: Annotated[
        str, typer.Option(envvar="API_URL", help="The running service (make passes API_URL)")
    ],
    normal: Annotated[int, typer.Option(min=0, help="Requests like the training data")] = 300,
    shifted_count: Annotated[
        int, typer.Option("--shifted", min=0, help="Requests that drifted")
    ] = 300,
    shift: Annotated[
        float,
        typer.Option(help="Factor on every other numeric feature, shifted (on a picture's size)"),
    ] = 1.5,
    out_of_range_count: Annotated[
        int, typer.Option("--out-of-range", min=0, help="Requests the service must reject")
    ] = 5,
    rate: Annotated[float, typer.Option(min=0, help="Requests per second (0: at once)")] = 20.0,
    seed: Annotated[int, typer.Option(help="Seed of the row sampling")] = 0,
    data: Annotated[
        list[Path] | None,
        typer.Option(help="CSVs to draw rows from (default: both splits; of pictures, the test's)"),
    ] = None,
    ground_truth: Path = GROUND_TRUTH_FILE,
) -> None:
    """Send normal, then shifted traffic, and record the true labels."""
    with reported("simulate-traffic"):
        service = Service(url)
        model = service.get("/model")
        inputs, target = Inputs.of(model), model["target"]
        rows = []
        for path in data or ([TEST_FILE] if inputs.images else [TRAIN_FILE, TEST_FILE]):
            try:
                with path.open(encoding="utf-8", newline="") as handle:
                    rows += [
                        (inputs.record(row), str(row[target])) for row in csv.DictReader(handle)
                    ]
            except (OSError, KeyError, ValueError) as error:
                raise PipelineError(
                    f"cannot read the model's features from {path}: {error}"
                ) from None
        if not inputs.numeric and not inputs.images and out_of_range_count:
            typer.echo("simulate-traffic: the model has no numeric feature: no out-of-range phase")
            out_of_range_count = 0
        rng = random.Random(seed)
        total = normal + shifted_count + out_of_range_count
        pace = f"about {total / rate:.0f} s" if rate else "a few seconds"
        typer.echo(f"simulate-traffic: {total} requests to {service.url} ({pace})")
        phases = {
            "normal": rng.choices(rows, k=normal),
            f"shifted x{shift:g}": [
                (shifted(r, inputs, shift), label)
                for r, label in rng.choices(rows, k=shifted_count)
            ],
            "not PNG or JPEG" if inputs.images else "out of range": [
                (out_of_range(r, inputs, rng), label)
                for r, label in rng.choices(rows, k=out_of_range_count)
            ],
        }
        ground_truth.parent.mkdir(parents=True, exist_ok=True)
        new = not ground_truth.is_file()
        # Line-buffered: each label is on disk once written, even if the service dies mid-run.
        with ground_truth.open("a", encoding="utf-8", newline="", buffering=1) as handle:
            labels = csv.writer(handle)
            if new:
                labels.writerow(GROUND_TRUTH_COLUMNS)
            done = [
                send(service, inputs, Phase(name), sent, rate, labels.writerow)
                for name, sent in phases.items()
            ]
    for phase in done:
        typer.echo(f"simulate-traffic: {phase.line()}")
    typer.echo(
        f"simulate-traffic: {sum(p.answered for p in done)} true labels added to "
        f"{display_path(ground_truth)}; now `make drift`"
    )


if __name__ == "__main__":
    app()
