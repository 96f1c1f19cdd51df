"""`make tune`: the search space is typed, a trial is scored as the gate scores, and a study is
seeded, resumable and reported without touching params.yaml or the registry.

The trials run on a small made-up table (tables.mixed_frame), in this process; the slow tier of
the template runs `make tune` on a real Dask LocalCluster.
"""

from __future__ import annotations

from dataclasses import replace

import mlflow
import optuna
import pandas as pd
import pytest
import yaml
from tables import mixed_frame

from {{ cookiecutter.module_name }}.modeling.search import (
    apply_command,
    carve,
    run_trial,
    suggest,
    with_changes,
)
from {{ cookiecutter.module_name }}.modeling.splits import (
    feature_kinds,
    features_and_labels,
)
from {{ cookiecutter.module_name }}.modeling.tune import (
    main,
    tune,
)
from {{ cookiecutter.module_name }}.params import (
    Params,
    ParamsError,
    load_params,
)


def edited_params(tmp_path, change) -> str:
    """The first line of the error for the project's params.yaml with `change` applied."""
    document = yaml.safe_load(load_params().model_dump_json())
    change(document["tune"])
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(ParamsError) as raised:
        load_params(path)
    return str(raised.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.update(trials=0), "tune.trials: Input should be greater than or equal to 1"),
        (lambda t: t.update(metric="speed"), "tune.metric: Input should be"),
        (lambda t: t.update(cluster="dask://x"), "tune.cluster: none, local or a scheduler's"),
        (lambda t: t.update(workers=0), "tune.workers: Input should be greater than or equal to 1"),
        (
            lambda t: t.update(timeout_seconds=t.pop("trials")),
            "tune.trials: missing",
        ),
        (lambda t: t.update(study="my study"), "tune.study: String should match pattern"),
        (lambda t: t.update(space={}), "tune.space: tune.space names no algorithm"),
        (
            lambda t: t["space"].update(xgboost={"depth": [1, 2]}),
            "tune.space.xgboost: unknown key (known keys: random_forest, logistic_regression, mlp)",
        ),
        (
            lambda t: t["space"].update(logistic_regression={"C": [10, 1]}),
            "tune.space.logistic_regression.C: a range is [low, high] with low <= high",
        ),
        (
            lambda t: t["space"].update(logistic_regression={"C": [0, 1]}),
            "tune.space.logistic_regression.C.0: Input should be greater than 0",
        ),
        (lambda t: t["space"].update(mlp={"hidden_units": 64}), "tune.space.mlp.hidden_units:"),
    ],
)
def test_a_bad_search_space_fails_in_one_line(tmp_path, change, message):
    error = edited_params(tmp_path, change)
    assert error.startswith(f"params.yaml: {message}"), error
    assert "\n" not in error


def test_a_positive_class_metric_needs_a_positive_label(tmp_path):
    document = yaml.safe_load(load_params().model_dump_json())
    document["data"]["positive_label"] = None
    document["gate"] = {"minimum": {"accuracy": 0.5}, "compare_on": "accuracy"}
    document["tune"]["metric"] = "positive_f1"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(ParamsError, match=r"tune\.metric positive_f1 needs data\.positive_label"):
        load_params(path)


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """Its own MLflow database, never the project's."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield
    mlflow.set_tracking_uri(None)


@pytest.fixture
def table(tmp_path) -> tuple[Params, object]:
    """The project's params on the made-up table (written as the training split), with a
    budget of three trials in this process."""
    frame, data = mixed_frame(rows=240)
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    params = load_params()
    budget = params.tune.model_copy(update={"trials": 3, "cluster": "none", "study": "t"})
    return params.model_copy(update={"data": data, "tune": budget, "images": None}), path


def test_a_trial_picks_only_listed_algorithms_within_their_ranges():
    space = load_params().tune.space
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        changes = suggest(study.ask(), space)
        assert changes["model"] in space.algorithms()
        train = with_changes(load_params().train, changes)  # every pick is a valid `train`
        if train.model == "logistic_regression":
            low, high = space.logistic_regression.C
            assert low <= train.C <= high
        elif train.model == "mlp":
            low, high = space.mlp.hidden_units
            assert low <= train.hidden_layers[0] <= high and len(train.hidden_layers) == 1


def test_a_trial_scores_a_validation_part_of_the_training_split(table):
    params, path = table
    frame = pd.read_csv(path, dtype=str)
    kinds = feature_kinds(list(frame.columns), params.data.target, params.data.columns)
    features, labels = features_and_labels(frame, params.data.target, kinds)
    data = carve(features, labels, 0.25, seed=7, positive=None)
    again = carve(features, labels, 0.25, seed=7, positive=None)
    assert list(data.labels.index) == list(again.labels.index)  # seeded
    assert len(data.labels) == 60 and set(data.labels) == set(labels)  # every class, stratified
    assert not set(data.labels.index) & set(data.fit_labels.index)
    regression = with_changes(params.train, {"model": "logistic_regression", "C": 1.0})
    good = run_trial(regression, kinds, None, data, "f1_macro")
    weak = run_trial(with_changes(regression, {"C": 1e-4}), kinds, None, data, "f1_macro")
    assert good.score is not None and weak.score is not None and good.score > weak.score
    assert good.seconds > 0 and good.error == ""


def test_a_trial_that_cannot_score_fails_with_its_reason(table):
    params, path = table
    frame = pd.read_csv(path, dtype=str)
    kinds = feature_kinds(list(frame.columns), params.data.target, params.data.columns)
    features, labels = features_and_labels(frame, params.data.target, kinds)
    data = carve(features, labels, 0.25, seed=7, positive=None)
    one_class = data.labels == data.labels.iloc[0]  # ROC AUC needs every class to score
    lacking = replace(data, features=data.features[one_class], labels=data.labels[one_class])
    outcome = run_trial(params.train, kinds, None, lacking, "roc_auc")
    assert outcome.score is None
    assert outcome.error == "roc_auc is undefined on this validation split"
    assert run_trial(params.train, kinds, None, lacking, "accuracy").score is not None


def test_a_study_is_seeded_resumable_and_reported(table, tmp_path, tracking):
    params, path = table
    first, ran = tune(params, path, tmp_path / "a.db")
    same, _ = tune(params, path, tmp_path / "b.db")  # a fresh study, the same seed
    resumed, again = tune(params, path, tmp_path / "a.db")
    runs = mlflow.search_runs(experiment_names=[f"{params.mlflow.experiment}-tuning"])
    assert ran == again == 3
    assert (same["train"], same["score"]) == (first["train"], first["score"])
    assert first["trials"] == 3 and resumed["trials"] == 6
    assert resumed["score"] >= first["score"]
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert len(parents) == 3 and len(runs) == 3 + 9
    assert set(runs["tags.mlflow.parentRunId"].dropna()) == set(parents["run_id"])
    assert first["mlflow_parent_run"] in set(parents["run_id"])
    best = parents[parents["run_id"] == first["mlflow_parent_run"]].iloc[0]
    assert best["metrics.best_validation_f1_macro"] == pytest.approx(first["score"])
    assert best["params.best_model"] == first["train"]["model"]
    assert first["command"] == apply_command(first["train"])


def test_the_command_writes_the_best_params_and_leaves_params_yaml_alone(table, tmp_path, tracking):
    params, path = table
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params.model_dump(mode="json")), encoding="utf-8")
    before = params_file.read_bytes()
    best, apply = tmp_path / "tuning" / "best_params.yaml", tmp_path / "tuning" / "apply.sh"
    main(path, tmp_path / "study.db", best, apply, params_file)
    assert params_file.read_bytes() == before
    written = yaml.safe_load(best.read_text())
    assert written["study"] == "t" and written["trials"] == 3
    assert written["metric"] == params.tune.metric
    assert written["command"].startswith(f"dvc exp run -S train.model={written['train']['model']}")
    assert apply.read_text().splitlines()[-1] == written["command"]


def test_the_apply_command_writes_what_dvc_reads_back():
    command = apply_command({"model": "mlp", "hidden_layers": [64], "C": 1e-6})
    assert command == "dvc exp run -S train.model=mlp -S train.hidden_layers=[64] -S train.C=1e-06"
    settings = dict(part.split("=", 1) for part in command.split(" -S ")[1:])
    assert yaml.safe_load(settings["train.hidden_layers"]) == [64]  # a list, as params.py wants
