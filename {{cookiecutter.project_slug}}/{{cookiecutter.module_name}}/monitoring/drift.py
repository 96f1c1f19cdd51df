"""`make drift`: do the inputs the service receives still look like the training data?

Compares the `drift.window` most recent predictions of the prediction log (or a CSV of new data,
`--current`) with the training split in an Evidently report run with its tests: a feature drifted
when its test failed, the data when at least `drift.drift_share` of the features did (an image
model's pictures: their measures, pictures.py). Writes to
reports/drift/: data_drift.html and .json; quality.html and .json when true labels are known (the
ground-truth CSV of `make simulate-traffic`, or a target column in `--current`); and drift.json,
which the service publishes (summary.py). Bad inputs stop it with one line before Evidently runs.
Exits 1 when the data drifted, so a scheduled job can act on it; takes 10-20 s.

Longer than most modules: its steps (read the log or a CSV, check the inputs, two reports and the
summary) serve this one job only.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from ..bundle import BundleMetadata, read_verified
from ..config import (
    BUNDLE_DIR,
    DRIFT_DIR,
    GROUND_TRUTH_FILE,
    PARAMS_FILE,
    PREDICTION_LOG,
    TEST_FILE,
    TRAIN_FILE,
    display_path,
)
from ..errors import PipelineError, reported
from ..inference import Row, load
from ..modeling.splits import SplitError, features_and_labels, kinds_of
from ..params import DriftParams, load_params
from .store import LoggedModel, UnreadableLogError, read_recent, shown
from .summary import DriftSummary, FeatureDrift, Quality, write_summary

app = typer.Typer(add_completion=False, help=__doc__)

# Column names of the quality report's frames.
TARGET, PREDICTION = "target", "prediction"


class DriftInputError(PipelineError):
    """There is nothing, or too little, to compare."""


def current_from_log(log: Path, features: list[str], window: int) -> tuple[pd.DataFrame, str]:
    """The `window` most recent logged inputs of the served model's features, with their request
    ids and predicted labels."""
    if not log.is_file():
        raise DriftInputError(
            f"no prediction log at {display_path(log)}: serve the model and send it requests "
            "(`make simulate-traffic`), or pass --current with a CSV of new data"
        )
    try:
        recent = read_recent(log, window)
    except UnreadableLogError as error:
        raise DriftInputError(
            f"cannot read the prediction log {display_path(log)} ({error}): move it away, the "
            "service starts a new one"
        ) from None
    logged = [p for p in recent if list(p.inputs) == features]
    rows = pd.DataFrame(
        [[*p.inputs.values(), p.request_id, p.position, p.label, p.model_version] for p in logged],
        columns=[*features, "request_id", "position", PREDICTION, "model_version"],
    )
    return rows, f"prediction log: {shown(logged)}"


def with_ground_truth(current: pd.DataFrame, ground_truth: Path) -> pd.DataFrame:
    """The logged rows whose true label the ground-truth CSV gives, with it as TARGET."""
    if not ground_truth.is_file():
        return current.iloc[0:0]
    truth = pd.read_csv(ground_truth, dtype={"request_id": str, "position": int, "label": str})
    truth = truth.drop_duplicates(["request_id", "position"], keep="last")
    labelled = current.merge(truth, on=["request_id", "position"], how="inner")
    return labelled.rename(columns={"label": TARGET})


def pictures_of(metadata: BundleMetadata) -> Any:
    """pictures.py for an image model, whose pictures' measures are compared; else None."""
    if metadata.image_feature is None:
        return None
    from . import pictures  # the image task's module (its errors are one line too)

    return pictures


def typed(frame: pd.DataFrame, metadata: BundleMetadata, source: str) -> pd.DataFrame:
    """The model's features of `frame`, typed by kind as the pipeline types them (of an image
    model, its pictures' measures); one line for a value of the wrong kind or a feature with no
    value at all (no test can run on it)."""
    if (pictures := pictures_of(metadata)) is not None:
        return pictures.compared(frame, metadata.image_feature, source)
    try:
        features, _ = features_and_labels(
            frame.assign(**{metadata.target: ""}), metadata.target, kinds_of(metadata.features)
        )
    except SplitError as error:
        raise DriftInputError(f"{source}: {error}") from None
    empty = [name for name in features if features[name].isna().all()]
    if empty:
        raise DriftInputError(
            f"{source}: the column {empty[0]!r} has no values"
            + (f" (nor {', '.join(map(repr, empty[1:]))})" if len(empty) > 1 else "")
            + ": fill it in, or compare data that has it"
        )
    return features


def model_rows(frame: pd.DataFrame, metadata: BundleMetadata, source: str) -> list[Row]:
    """The served model's rows of `frame`: its features, or the pixels of its pictures."""
    pictures = pictures_of(metadata)
    if pictures is None:
        return list(typed(frame, metadata, source).itertuples(index=False, name=None))
    return pictures.pixel_rows(frame, metadata.image_feature, source)


def labelled(frame: pd.DataFrame, rows: list[Row], target: str, bundle_dir: Path) -> pd.DataFrame:
    """The true labels of `frame` (TARGET) and the served model's for its `rows` (PREDICTION)."""
    _, model = load(bundle_dir)
    predicted, _ = model.predict(rows)
    return pd.DataFrame(
        {TARGET: frame[target].astype(str), PREDICTION: predicted}, index=frame.index
    )


def known_labels(rows: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """The rows whose true label is one of the model's classes; says how many are not."""
    known = rows[rows[TARGET].isin(classes)]
    if len(known) < len(rows):
        others = sorted(set(rows[TARGET]) - set(classes))
        named = ", ".join(map(repr, others[:5])) + (", ..." if len(others) > 5 else "")
        typer.echo(
            f"drift: {len(rows) - len(known)} labelled rows have a true label the model "
            f"does not know ({named}): left out of the quality report"
        )
    return known


def verdicts(result: dict[str, Any]) -> tuple[dict[str, FeatureDrift], float, bool]:
    """Each column's drift from its test's status, keyed by the metric's `config.column` (never
    by position), then the share of drifted features and the dataset's verdict."""
    metrics = {metric["id"]: metric for metric in result["metrics"]}
    features: dict[str, FeatureDrift] = {}
    share, dataset_drift = None, None
    for test in result["tests"]:
        metric = metrics[test["metric_config"]["metric_id"]]
        config, status = metric["config"], getattr(test["status"], "value", test["status"])
        if status == "ERROR":
            raise PipelineError(f"Evidently could not compute {metric['metric_name']}")
        failed = status != "SUCCESS"  # FAIL, or WARNING for a test made non-critical
        if config["type"].endswith(":ValueDrift"):
            features[config["column"]] = FeatureDrift(
                score=metric["value"],
                method=config["method"],
                threshold=config["threshold"],
                drifted=failed,
            )
        elif config["type"].endswith(":DriftedColumnsCount"):
            share, dataset_drift = metric["value"]["share"], failed
    if share is None or dataset_drift is None:
        raise PipelineError("the Evidently report has no test of the share of drifted columns")
    return features, share, dataset_drift


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, metadata: BundleMetadata,
                 params: DriftParams) -> Any:  # fmt: skip
    """Evidently's data-drift report with its tests, each feature tested as its kind (numbers
    with `params.method`, categories by frequency, texts by a classifier telling current from
    reference texts), and each text's length in characters and words, left out of the share."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.descriptors import TextLength, WordCount
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset
    from sklearn.exceptions import ConvergenceWarning

    features = metadata.feature_names
    kinds = kinds_of(metadata.features)
    texts = [name for name in features if kinds[name] == "text"]
    definition = DataDefinition(
        numerical_columns=[name for name in features if kinds[name] == "numeric"],
        categorical_columns=[name for name in features if kinds[name] == "category"],
        text_columns=texts,
    )
    descriptors = [TextLength(name, alias=f"{name}: characters") for name in texts] + [
        WordCount(name, alias=f"{name}: words") for name in texts
    ]
    preset = DataDriftPreset(
        columns=features,
        drift_share=params.drift_share,
        num_method=params.method,  # the test of numeric features; the others keep their own
        num_threshold=params.threshold,
    )
    with warnings.catch_warnings():
        # Text content drift fits a small SGD classifier with a fixed iteration budget; on a few
        # hundred texts it may stop before converging, which only makes the test more cautious.
        warnings.filterwarnings("ignore", "Maximum number of iteration", ConvergenceWarning)
        measures = [ValueDrift(column=descriptor.alias) for descriptor in descriptors]
        return Report([preset, *measures], include_tests=True).run(
            current_data=Dataset.from_pandas(
                current[features], data_definition=definition, descriptors=descriptors
            ),
            reference_data=Dataset.from_pandas(
                reference[features], data_definition=definition, descriptors=descriptors
            ),
        )


def quality_report(reference: pd.DataFrame, current: pd.DataFrame, metadata: BundleMetadata) -> Any:
    """Evidently's classification report: true labels (TARGET) against predictions."""
    from evidently import (
        BinaryClassification,
        DataDefinition,
        Dataset,
        MulticlassClassification,
        Report,
    )
    from evidently.presets import ClassificationPreset
    from sklearn.exceptions import UndefinedMetricWarning

    classes = metadata.classes
    task = (
        BinaryClassification(
            target=TARGET,
            prediction_labels=PREDICTION,
            pos_label=metadata.positive_label or classes[1],
        )
        if len(classes) == 2
        else MulticlassClassification(target=TARGET, prediction_labels=PREDICTION)
    )
    definition = DataDefinition(classification=[task], categorical_columns=[TARGET, PREDICTION])
    with warnings.catch_warnings():
        # Drifted data may leave a class never predicted: its precision is reported as 0.
        warnings.filterwarnings("ignore", "Precision is ill-defined", UndefinedMetricWarning)
        return Report([ClassificationPreset()], include_tests=True).run(
            current_data=Dataset.from_pandas(current[[TARGET, PREDICTION]], definition),
            reference_data=Dataset.from_pandas(reference[[TARGET, PREDICTION]], definition),
        )


def accuracy(frame: pd.DataFrame) -> float:
    return float((frame[TARGET] == frame[PREDICTION]).mean())


@app.command()
def main(
    current: Annotated[Path | None, typer.Option(help="CSV of new data, not the log")] = None,
    log: Path = PREDICTION_LOG,
    ground_truth: Path = GROUND_TRUTH_FILE,
    reference: Path = TRAIN_FILE,
    test_file: Path = TEST_FILE,
    bundle_dir: Path = BUNDLE_DIR,
    output_dir: Path = DRIFT_DIR,
    params_file: Path = PARAMS_FILE,
) -> None:
    """Compare recent inputs with the training data; exit 1 when they have drifted."""
    with reported("drift"):
        params = load_params(params_file)
        if params.drift is None:
            raise PipelineError(f"{params_file.name} has no `drift` section")
        metadata = read_verified(bundle_dir)
        pictures = pictures_of(metadata)
        if current is None:
            logged = list(LoggedModel.of(metadata).features)
            recent, source = current_from_log(log, logged, params.drift.window)
            truth = with_ground_truth(recent, ground_truth)
        else:
            frame, source = pd.read_csv(current, dtype=str), display_path(current)
            recent = typed(frame, metadata, source)
            truth = recent.iloc[0:0]
            if metadata.target in frame:
                rows = model_rows(frame, metadata, source)
                truth = labelled(frame, rows, metadata.target, bundle_dir)
        recent_features = typed(recent, metadata, source)
        if len(recent) < params.drift.min_rows:
            raise DriftInputError(
                f"{len(recent)} rows in {source}: too few for a verdict (drift.min_rows in "
                f"params.yaml is {params.drift.min_rows}); send more requests first, or lower "
                "drift.min_rows for a smaller data set"
            )
        training = pd.read_csv(reference, dtype=str)
        if pictures:  # each picture must be read and measured: a sample
            training = training.sample(min(len(training), pictures.REFERENCE_ROWS), random_state=0)
        training = typed(training, metadata, display_path(reference))
        typer.echo(f"drift: {source} against {len(training)} training rows (about 15 s)")
        output_dir.mkdir(parents=True, exist_ok=True)
        snapshot = (
            pictures.drift_report(training, recent_features, params.drift) if pictures
            else drift_report(training, recent_features, metadata, params.drift)
        )  # fmt: skip
        snapshot.save_html(str(output_dir / "data_drift.html"))
        snapshot.save_json(str(output_dir / "data_drift.json"))
        result = snapshot.dict()
        drifts, share, dataset_drift = verdicts(result)
        if pictures:  # the thumbnails' verdict, counted in the share
            drifts, share, dataset_drift = pictures.with_embedding(result, drifts, params.drift)
        features = pictures.COMPARED if pictures else metadata.feature_names
        measures = {name: drifts.pop(name) for name in list(drifts) if name not in features}
        quality = None
        truth = known_labels(truth, metadata.classes)
        if len(truth) >= params.drift.min_rows:
            test = pd.read_csv(test_file, dtype=str)
            rows = model_rows(test, metadata, display_path(test_file))
            test = labelled(test, rows, metadata.target, bundle_dir)
            checked = quality_report(test, truth, metadata)
            checked.save_html(str(output_dir / "quality.html"))
            checked.save_json(str(output_dir / "quality.json"))
            quality = Quality(
                labelled_rows=len(truth),
                accuracy=accuracy(truth),
                reference_accuracy=accuracy(test),
            )
        summary = DriftSummary(
            created_at=datetime.now(UTC),
            current_source=source,
            current_rows=len(recent),
            reference_rows=len(training),
            model_versions=sorted({int(v) for v in recent.get("model_version", [])}),
            drift_share=share,
            drift_share_threshold=params.drift.drift_share,
            dataset_drift=dataset_drift,
            features=drifts,
            text_measures=measures,
            quality=quality,
        )
        write_summary(output_dir / "drift.json", summary)
    report(summary, output_dir)
    if dataset_drift:
        raise typer.Exit(1)


def report(summary: DriftSummary, output_dir: Path) -> None:
    drifted = summary.drifted_features
    typer.echo(
        f"drift: {len(drifted)} of {len(summary.features)} features drifted "
        f"({summary.drift_share * 100:.0f}%; the data drifts from "
        f"{summary.drift_share_threshold * 100:.0f}%)"
        + (f": {', '.join(drifted)}" if drifted else "")
    )
    if summary.text_measures:
        moved = [name for name, measure in summary.text_measures.items() if measure.drifted]
        typer.echo(f"drift: text lengths and word counts: {', '.join(moved) or 'no drift'}")
    if summary.quality is not None:
        typer.echo(
            f"drift: accuracy {summary.quality.accuracy:.3f} on {summary.quality.labelled_rows} "
            f"labelled predictions; the served model had {summary.quality.reference_accuracy:.3f} "
            "on the test split"
        )
    verdict = "THE DATA HAS DRIFTED" if summary.dataset_drift else "no drift of the data"
    typer.echo(f"drift: {verdict}; reports in {display_path(output_dir)}/ (data_drift.html)")


if __name__ == "__main__":
    app()
