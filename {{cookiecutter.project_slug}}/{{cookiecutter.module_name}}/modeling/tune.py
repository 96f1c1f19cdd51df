"""`make tune`: search the `tune` section's space with Optuna, each trial a nested MLflow run.

Trials run in this process, or on Dask workers (`tune.cluster`: local starts a LocalCluster, a
tcp:// address uses a running scheduler): this process asks Optuna for a batch of trials (one per
worker), the workers fit and score them (modeling/search.py), and this process tells Optuna the
scores in the order it asked, so the same seed gives the same trials however fast each worker is,
then logs each trial to MLflow (workers need no MLflow). The study lives in
reports/tuning/optuna.db: the same `tune.study` resumes it, after Ctrl-C too. The best trial goes
to reports/tuning/best_params.yaml with the `dvc exp run` command that applies it; params.yaml,
the registry and the champion are never touched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import optuna
import typer
import yaml

from ..config import APPLY_FILE, BEST_PARAMS_FILE, PARAMS_FILE, STUDY_DB, TRAIN_FILE, display_path
from ..errors import PipelineError, reported
from ..params import Params, TuneParams, load_params
from ..tracking import connect, owner_tags, tracking_errors
from .search import Outcome, Validation, apply_command, carve, run_trial, suggest, with_changes
from .splits import feature_kinds, features_and_labels, image_feature, read_frame

app = typer.Typer(add_completion=False, help=__doc__)

# A batch's trials, scored: the same list in, the same order out.
Runner = Callable[[list[Any]], list[Outcome]]


class TuneError(PipelineError):
    """The study or the Dask cluster cannot be used."""


def open_study(tune: TuneParams, storage: Path) -> optuna.Study:
    """The study named `tune.study`, created or resumed; trials a killed run left RUNNING fail."""
    storage.parent.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=f"sqlite:///{storage}",
        study_name=tune.study,
        direction="maximize",
        load_if_exists=True,
    )
    # Seeded by the trials so far too: a resumed study goes on, rather than repeating the first
    # run's trials, and the same study state and seed still give the same next trials.
    study.sampler = optuna.samplers.TPESampler(seed=tune.seed + len(study.trials))
    scored_on = study.user_attrs.setdefault("metric", tune.metric)
    if scored_on != tune.metric:
        raise TuneError(
            f"study {tune.study} is scored on {scored_on}, not tune.metric {tune.metric}: "
            "name a new tune.study"
        )
    study.set_user_attr("metric", scored_on)
    for trial in study.get_trials(states=[optuna.trial.TrialState.RUNNING]):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    return study


@contextmanager
def trial_runner(
    tune: TuneParams, call: Callable[[Any, Any], Outcome], data: Any
) -> Iterator[tuple[Runner, int]]:
    """Run `call(train_params, data)` for each trial of a batch, here or on Dask; yields the
    runner and how many trials a batch holds (one per worker)."""
    if tune.cluster == "none":
        yield (lambda batch: [call(train, data) for train in batch]), 1
        return
    from dask.distributed import Client, LocalCluster  # only for trials on Dask

    if tune.cluster == "local":
        typer.echo(f"tune: starting a Dask LocalCluster of {tune.workers} workers (~5 s)")
        cluster = LocalCluster(
            n_workers=tune.workers,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    else:
        cluster = None
        try:
            client = Client(tune.cluster, timeout="10s")
        except (OSError, TimeoutError) as error:
            raise TuneError(f"no Dask scheduler answers at {tune.cluster}: {error}") from None
    try:
        workers = max(1, len(client.scheduler_info()["workers"]))
        shared = client.scatter(data, broadcast=True)  # sent once, not with every trial

        def on_dask(batch: list[Any]) -> list[Outcome]:
            futures = [client.submit(call, train, shared, pure=False) for train in batch]
            return [future.result() for future in futures]

        yield on_dask, workers
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def validation_data(params: Params, train_path: Path) -> tuple[dict, Any, Validation]:
    """The features' kinds, the image column and the training split cut for validation."""
    frame = read_frame(train_path)
    kinds = feature_kinds(list(frame.columns), params.data.target, params.data.columns)
    image = image_feature(kinds, params)
    features, labels = features_and_labels(frame, params.data.target, kinds, image)
    tune = params.tune
    data = carve(features, labels, tune.validation_size, tune.seed, params.data.positive_label)
    return kinds, image, data


def log_trial(number: int, changes: dict[str, Any], outcome: Outcome, metric: str) -> None:
    """One trial as a run nested in the active one: its parameters, score and seconds."""
    status = "FINISHED" if outcome.score is not None else "FAILED"
    with mlflow.start_run(run_name=f"trial {number}", nested=True, tags=owner_tags()):
        mlflow.log_params({"trial": number, **changes})
        mlflow.log_metric("fit_seconds", outcome.seconds)
        if outcome.score is not None:
            mlflow.log_metric(f"validation_{metric}", outcome.score)
        else:
            mlflow.set_tag("error", outcome.error[:500])
        mlflow.end_run(status=status)


def search(study: optuna.Study, params: Params, runner: Runner, batch_size: int) -> int:
    """Ask, run, tell and log batches of trials within the budget; return how many ran."""
    tune, done = params.tune, 0
    deadline = time.monotonic() + tune.timeout_seconds
    while done < tune.trials and time.monotonic() < deadline:
        asked = [study.ask() for _ in range(min(batch_size, tune.trials - done))]
        try:
            chosen = [suggest(trial, tune.space) for trial in asked]
            outcomes = runner([with_changes(params.train, changes) for changes in chosen])
        except BaseException:  # Ctrl-C or a lost worker: these trials failed, the study stays
            for trial in asked:
                study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            raise
        for trial, changes, outcome in zip(asked, chosen, outcomes, strict=True):
            trial.set_user_attr("train", changes)  # the `train` keys, for best_params.yaml
            if outcome.score is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, outcome.score)
            log_trial(trial.number, changes, outcome, tune.metric)
            shown = "failed: " + outcome.error if outcome.score is None else f"{outcome.score:.4f}"
            typer.echo(f"tune: trial {trial.number} {changes} -> {shown}")
        done += len(asked)
    return done


def best_result(study: optuna.Study, metric: str, run_id: str) -> dict[str, Any]:
    """best_params.yaml's content: the study's best trial, its `train` changes and command."""
    try:
        best = study.best_trial
    except ValueError:
        raise TuneError(f"study {study.study_name} has no finished trial yet") from None
    changes = best.user_attrs["train"]
    finished = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    return {
        "study": study.study_name,
        "metric": metric,
        "score": best.value,
        "trial": best.number,
        "trials": len(finished),
        "mlflow_parent_run": run_id,
        "train": changes,
        "command": apply_command(changes),
    }


def write_result(result: dict[str, Any], best_file: Path, apply_file: Path) -> None:
    best_file.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `make tune`: review, then apply with the command below (apply.sh).\n"
    best_file.write_text(header + yaml.safe_dump(result, sort_keys=False), encoding="utf-8")
    apply_file.write_text(
        f"# The best trial of study {result['study']} ({result['metric']} "
        f"{result['score']:.4f} on validation): runs the pipeline with it as a DVC experiment.\n"
        f"{result['command']}\n",
        encoding="utf-8",
    )


def tune(params: Params, train_path: Path, storage: Path) -> tuple[dict[str, Any], int]:
    """Run a budget of trials into the study under one MLflow parent run; return the best."""
    kinds, image, data = validation_data(params, train_path)
    study = open_study(params.tune, storage)
    connect(f"{params.mlflow.experiment}-tuning")
    metric = params.tune.metric

    def call(train: Any, shared: Validation) -> Outcome:
        return run_trial(train, kinds, image, shared, metric)

    # The cluster first: no MLflow run is left behind when its scheduler does not answer.
    with (
        trial_runner(params.tune, call, data) as (runner, batch_size),
        tracking_errors(),
        mlflow.start_run(run_name=f"tune {study.study_name}", tags=owner_tags()),
    ):
        run_id = mlflow.active_run().info.run_id
        budget = params.tune.model_dump(include={"study", "metric", "cluster", "seed", "trials"})
        mlflow.log_params({**budget, "space": params.tune.space.model_dump_json(exclude_none=True)})
        try:
            ran = search(study, params, runner, batch_size)
        except KeyboardInterrupt:
            mlflow.end_run(status="KILLED")
            raise
        result = best_result(study, metric, run_id)
        mlflow.log_params({f"best_{key}": value for key, value in result["train"].items()})
        mlflow.log_metrics({f"best_validation_{metric}": result["score"], "trials_run": ran})
    return result, ran


@app.command()
def main(
    train_path: Path = TRAIN_FILE,
    storage: Path = STUDY_DB,
    best_file: Path = BEST_PARAMS_FILE,
    apply_file: Path = APPLY_FILE,
    params_file: Path = PARAMS_FILE,
) -> None:
    """Search the `tune` space of params.yaml; write the best trial, never params.yaml."""
    with reported("tune"):
        params = load_params(params_file)
        budget = params.tune
        typer.echo(
            f"tune: up to {budget.trials} trials or {budget.timeout_seconds:g} s of study "
            f"{budget.study} ({budget.metric} on validation), trials on cluster {budget.cluster}"
        )
        try:
            result, ran = tune(params, train_path, storage)
        except KeyboardInterrupt:
            typer.echo(f"tune: interrupted; `make tune` resumes study {budget.study}", err=True)
            raise typer.Exit(130) from None
        write_result(result, best_file, apply_file)
    typer.echo(
        f"tune: {ran} trials run, best {result['metric']} {result['score']:.4f} "
        f"(trial {result['trial']} of {result['trials']}) -> {display_path(best_file)}\n"
        f"Review it, then apply it with:\n  {result['command']}"
    )


# LocalCluster's worker processes start by importing this module again: the guard keeps them
# from running the command.
if __name__ == "__main__":
    app()
