"""Stage `promote`: the candidate replaces the served model only if it wins, and the registry's
`champion` alias and models/bundle (versioned by git and DVC) always name the same model.

1. If the alias and models/bundle disagree, the stage stops and says how to reconcile them
   (`sync` points the alias at models/bundle; `check` only tells).
2. Both bundles are scored alike: ONNX Runtime on today's test split.
3. The candidate must reach every `gate.minimum` and not be perfect on a large test split (label
   leakage, unless `gate.allow_perfect`), or the stage fails and nothing moves.
4. It wins only with a strictly better `gate.compare_on`. A champion that cannot be scored today
   (changed features or classes, a column now ignored, an older bundle format) or that this
   MLflow store does not know yields to a candidate at least as good.
5. In a `dvc exp run` nothing moves, but a project with no model gets models/bundle (not the alias).
6. A promotion installs the bundle atomically, then moves the alias.
reports/promotion.json records the verdict and its reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import typer
from mlflow import MlflowClient
from pydantic import BaseModel

from ..bundle import (
    FORMAT_VERSION,
    METADATA_FILE,
    BundleError,
    BundleMetadata,
    ModelIdentity,
    install,
    read_document,
    read_identity,
    read_verified,
)
from ..config import (
    BUNDLE_DIR,
    CANDIDATE_BUNDLE_DIR,
    PARAMS_FILE,
    PROMOTION_FILE,
    TEST_FILE,
    display_path,
    mlflow_tracking_uri,
    running_experiment,
)
from ..errors import PipelineError, reported
from ..inference import OnnxModel, load
from ..params import DataParams, GateParams, Params, load_params
from ..tracking import connect
from . import registry
from .scoring import compute_metrics
from .splits import SplitError, read_frame, recorded_features

app = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)

# Zero errors on n test rows only says the error rate is below about 3/n (95 %): a perfect score
# proves little on wine's 36 rows (8 %), and is suspect from this many on (3 %).
PERFECT_SUSPECT_ROWS = 100
Metrics = dict[str, float | None]  # None: undefined on this test split (a class is missing)


class OutOfSyncError(PipelineError):
    """The registry's champion and models/bundle are not the same model."""


class Promotion(BaseModel):
    """reports/promotion.json: what the stage decided, and why."""

    candidate: ModelIdentity
    champion_before: ModelIdentity | None
    champion_after: ModelIdentity | None
    compare_on: str
    candidate_metrics: dict[str, float | None]
    champion_metrics: dict[str, float | None] | None
    passed_thresholds: bool
    promoted: bool
    experiment: str | None
    reasons: list[str]


@dataclass(frozen=True)
class Served:
    """The model in models/bundle; `metadata` is None for a bundle of an earlier format."""

    identity: ModelIdentity
    metadata: BundleMetadata | None


def served_bundle(bundle_dir: Path) -> Served | None:
    """The served bundle, None before the first promotion."""
    if not (bundle_dir / METADATA_FILE).exists():
        return None
    try:
        identity = read_identity(bundle_dir)
        current = read_document(bundle_dir).get("format_version") == FORMAT_VERSION
        return Served(identity, read_verified(bundle_dir) if current else None)
    except BundleError as error:
        raise BundleError(
            f"{error}; restore it with `dvc checkout {display_path(bundle_dir)}`"
        ) from None


def unknown_to_store(identity: ModelIdentity) -> OutOfSyncError:
    return OutOfSyncError(
        f"the MLflow store at {mlflow_tracking_uri()} does not know the served model {identity} "
        "(a new or reset store): retrain so that a registered candidate takes its place: "
        "`dvc repro --force --downstream train`"
    )


def check_in_sync(client: MlflowClient, name: str, served: Served | None, bundle_dir: Path) -> bool:
    """Raise OutOfSyncError if the alias names another model than models/bundle; return
    whether this store knows the served model."""
    alias = registry.champion(client, name)
    bundle = display_path(bundle_dir)
    if served is None:
        if alias is not None:
            raise OutOfSyncError(
                f"{bundle} is missing but the registry's champion is {alias}: restore it with "
                f"`dvc pull {bundle}` (or `dvc checkout {bundle}`)"
            )
        return True
    if alias is not None and alias != served.identity:
        raise OutOfSyncError(
            f"the registry's champion is {alias} but {bundle} holds {served.identity}. If "
            f"{bundle} is right (a rollback, an interrupted promotion), run `make sync-champion`; "
            f"if the registry is right, check out the commit that promoted it and `dvc pull`"
        )
    return registry.is_registered(client, served.identity)


def score(
    metadata: BundleMetadata, model: OnnxModel, test: pd.DataFrame, data: DataParams
) -> Metrics | None:
    """A bundle's metrics on the test split, None if it cannot read today's features or classes."""
    try:
        features, labels = recorded_features(test, data.target, metadata.features)
    except SplitError:
        return None
    positive = data.positive_label
    if set(labels) - set(metadata.classes) or positive not in [None, *metadata.classes]:
        return None
    predicted, probabilities = model.predict(list(features.itertuples(index=False, name=None)))
    return compute_metrics(labels, predicted, probabilities, metadata.classes, positive)


def below_thresholds(metrics: Metrics, gate: GateParams) -> list[str]:
    failures = []
    for metric, limit in gate.minimum.items():
        value = metrics.get(metric)
        if value is None:
            failures.append(
                f"{metric} is undefined on this test split (a class is missing from it), so "
                f"gate.minimum.{metric} cannot hold"
            )
        elif value < limit:
            failures.append(f"{metric} {value:.4f} is below gate.minimum.{metric} {limit}")
    return failures


def perfection(metrics: Metrics, rows: int, gate: GateParams) -> list[str]:
    """Why a candidate perfect on `rows` test rows is refused (unless too few, or allowed)."""
    values = [value for value in metrics.values() if value is not None]
    if gate.allow_perfect or rows < PERFECT_SUSPECT_ROWS or not values or min(values) < 1:
        return []
    return [
        f"every test metric is 1.0 on {rows} test rows: probably label leakage (a column that "
        "gives the answer away); if the problem truly is that easy, set gate.allow_perfect: true"
    ]


def judge(
    candidate: Metrics, champion: Metrics | None, known: bool, gate: GateParams
) -> tuple[bool, str]:
    """Whether a candidate that passed the thresholds replaces the champion, and why."""
    key = gate.compare_on
    mine = candidate.get(key)
    if mine is None:
        return False, f"{key} is undefined for the candidate on this test split: nothing moves"
    theirs = champion.get(key) if champion is not None else None
    if theirs is None:
        return True, "there is no champion that can be scored on today's test split"
    if mine > theirs:
        return True, f"{key} {mine:.4f} beats the champion's {theirs:.4f}"
    if not known and mine == theirs:
        return True, (
            f"{key} ties the champion's ({mine:.4f}), which this MLflow store does not know: "
            "the registered candidate takes its place"
        )
    if not known:
        raise OutOfSyncError(
            f"the served model is unknown to the MLflow store at {mlflow_tracking_uri()} (a new "
            f"or reset store) and the candidate's {key} {mine:.4f} is below its {theirs:.4f}: "
            "restore the store, or train a candidate at least as good"
        )
    return False, f"{key} {mine:.4f} does not beat the champion's {theirs:.4f}: the champion stays"


def promote(candidate_dir: Path, bundle_dir: Path, test_path: Path, params: Params) -> Promotion:
    """Judge the candidate against the champion; install it and move the alias if it wins."""
    gate = params.gate
    candidate, candidate_model = load(candidate_dir)
    served = served_bundle(bundle_dir)
    client = connect()
    known = check_in_sync(client, params.mlflow.registered_model, served, bundle_dir)

    test = read_frame(test_path)
    candidate_metrics = score(candidate, candidate_model, test, params.data)
    if candidate_metrics is None:
        raise BundleError(f"the candidate bundle cannot score {test_path}")
    champion_metrics = None
    champion = served.metadata if served is not None else None
    ignored = {name for name, kind in params.data.columns.items() if kind == "ignore"}
    # A champion reading a column now ignored (a leaky one?) would keep its place unfairly.
    if champion is not None and not ignored & set(champion.feature_names):
        champion_metrics = score(champion, load(bundle_dir)[1], test, params.data)

    experiment = running_experiment()
    failures = below_thresholds(candidate_metrics, gate)
    failures += perfection(candidate_metrics, len(test), gate)
    if failures:
        wins, reasons = False, failures
    else:
        wins, reason = judge(candidate_metrics, champion_metrics, known, gate)
        reasons = ["every threshold holds", reason]
    after = served.identity if served is not None and known else None
    if wins and experiment and served is None:
        install(candidate_dir, bundle_dir)  # a first model for this experiment, not the alias
        reasons.append(
            f"experiment {experiment}: first model in {display_path(bundle_dir)}, the alias does "
            "not move (apply it, then `make promote`)"
        )
    elif wins and experiment:
        reasons.append(f"experiment {experiment}: nothing moves (apply it, then `make promote`)")
    elif wins:
        after = install(candidate_dir, bundle_dir).identity
    if after is not None and not experiment:
        registry.set_champion(client, after)
    return Promotion(
        candidate=candidate.identity,
        champion_before=served.identity if served is not None else None,
        champion_after=after,
        compare_on=gate.compare_on,
        candidate_metrics=candidate_metrics,
        champion_metrics=champion_metrics,
        passed_thresholds=not failures,
        promoted=wins and not experiment,
        experiment=experiment,
        reasons=reasons,
    )


@app.command()
def run(
    candidate_dir: Path = CANDIDATE_BUNDLE_DIR,
    bundle_dir: Path = BUNDLE_DIR,
    test_path: Path = TEST_FILE,
    params_file: Path = PARAMS_FILE,
    record_file: Path = PROMOTION_FILE,
) -> None:
    """Judge the candidate; promote it if it beats the champion (the pipeline's stage)."""
    typer.echo("promote: scoring the candidate and the champion on the test split (about 5 s)")
    with reported("promote"):
        decision = promote(candidate_dir, bundle_dir, test_path, load_params(params_file))
        record_file.parent.mkdir(parents=True, exist_ok=True)
        record_file.write_text(decision.model_dump_json(indent=2) + "\n", encoding="utf-8")
        if not decision.passed_thresholds:
            raise PipelineError("gate failed: " + "; ".join(decision.reasons))
    outcome = "promoted to champion" if decision.promoted else "not promoted"
    typer.echo(f"promote: {decision.candidate}: {outcome}: {decision.reasons[-1]}")


@app.command()
def check(bundle_dir: Path = BUNDLE_DIR, params_file: Path = PARAMS_FILE) -> None:
    """Tell whether the registry's champion alias names the model in models/bundle."""
    with reported("champion"):
        served = served_bundle(bundle_dir)
        name = load_params(params_file).mlflow.registered_model
        if not check_in_sync(connect(), name, served, bundle_dir) and served is not None:
            raise unknown_to_store(served.identity)
    shown = served.identity if served else "none yet"
    typer.echo(f"champion: {shown}, in models/bundle and the registry alike")


@app.command()
def sync(bundle_dir: Path = BUNDLE_DIR) -> None:
    """Point the champion alias at the model in models/bundle."""
    with reported("champion"):
        served = read_identity(bundle_dir)
        client = connect()
        if not registry.is_registered(client, served):
            raise unknown_to_store(served)
        registry.set_champion(client, served)
    typer.echo(f"champion: the alias now names {served}, the model in models/bundle")


if __name__ == "__main__":
    app()
