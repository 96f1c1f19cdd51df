"""The `promote` stage: the gate, the comparison with the champion, and the invariant that the
registry's `champion` alias and models/bundle always name the same model."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient
from tables import kinds
from typer.testing import CliRunner

from {{ cookiecutter.module_name }}.bundle import (
    BundleError,
    read_verified,
)
from {{ cookiecutter.module_name }}.modeling import (
    promote as promote_stage,
)
from {{ cookiecutter.module_name }}.modeling import (
    registry,
)
from {{ cookiecutter.module_name }}.modeling.promote import (
    OutOfSyncError,
    judge,
    perfection,
    promote,
)
from {{ cookiecutter.module_name }}.params import (
    GateParams,
    Params,
)

GATE = GateParams(
    minimum={"accuracy": 0.9, "f1_macro": 0.9, "roc_auc": 0.95}, compare_on="f1_macro"
)
GOOD = {"accuracy": 0.96, "f1_macro": 0.95, "f1_weighted": 0.96, "roc_auc": 0.99}
PERFECT = dict.fromkeys(GOOD, 1.0)
pytestmark = pytest.mark.slow


def lenient(params: Params) -> Params:
    """No thresholds, so weak models (a one-split tree) can be champions in these tests."""
    gate = params.gate.model_copy(update={"minimum": {}})
    return params.model_copy(update={"gate": gate})


def champion(space):
    return registry.champion(MlflowClient(), space.params.mlflow.registered_model)


def served(space):
    return read_verified(space.bundle_dir).identity


def promote_command(space, *arguments: str):
    return CliRunner().invoke(
        promote_stage.app,
        [
            *arguments,
            "--bundle-dir", str(space.bundle_dir),
            *(
                ["--candidate-dir", str(space.root / "models" / "candidate_bundle"),
                 "--test-path", str(space.test_file),
                 "--params-file", str(space.write_params()),
                 "--record-file", str(space.root / "reports" / "promotion.json")]
                if arguments == ("run",) else []
            ),
        ],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("candidate", "champion_metrics", "known", "wins"),
    [
        (GOOD, None, True, True),
        (GOOD, {**GOOD, "f1_macro": 0.94}, True, True),
        (GOOD, GOOD, True, False),  # a tie keeps the champion
        (GOOD, {**GOOD, "f1_macro": 0.96}, True, False),
        (GOOD, GOOD, False, True),  # an unknown champion yields to an equal, registered candidate
        (GOOD, {**GOOD, "f1_macro": None}, True, True),  # a champion that cannot be compared
        ({**GOOD, "f1_macro": None}, GOOD, True, False),  # nor a candidate
    ],
)
def test_judge(candidate, champion_metrics, known, wins):
    assert judge(candidate, champion_metrics, known, GATE)[0] is wins


@pytest.mark.parametrize(
    ("metrics", "rows", "allow", "refused"),
    [
        (PERFECT, 114, False, True),
        ({**PERFECT, "roc_auc": None}, 114, False, True),  # undefined metrics say nothing
        (PERFECT, 36, False, False),  # wine's test split: too few rows to tell
        (PERFECT, 114, True, False),
        ({**PERFECT, "accuracy": 0.99}, 1000, False, False),
    ],
)
def test_a_perfect_candidate_on_many_test_rows_is_refused(metrics, rows, allow, refused):
    gate = GATE.model_copy(update={"allow_perfect": allow})
    reasons = perfection(metrics, rows, gate)
    assert bool(reasons) is refused
    if refused:
        assert reasons[0].startswith(f"every test metric is 1.0 on {rows} test rows: probably")
        assert "gate.allow_perfect: true" in reasons[0]


def test_an_unknown_champion_never_yields_to_a_worse_candidate():
    with pytest.raises(OutOfSyncError, match="unknown to the MLflow store"):
        judge({**GOOD, "f1_macro": 0.9}, GOOD, False, GATE)


def test_first_candidate_becomes_the_champion(champion_workspace):
    space = champion_workspace
    assert champion(space) == served(space)
    assert served(space).version == 1
    result = promote_command(space, "check")
    assert result.exit_code == 0, result.output
    assert "in models/bundle and the registry alike" in result.output


def test_a_tie_keeps_the_champion(champion_workspace, folder_bytes):
    """A forced re-run of the same parameters: a new, equal version, but no new champion."""
    space = champion_workspace
    before = folder_bytes(space.bundle_dir)
    decision = space.run_pipeline(name="rerun")
    assert decision.candidate.version > 1
    assert decision.passed_thresholds and not decision.promoted
    assert decision.candidate_metrics == decision.champion_metrics
    assert champion(space) == served(space) == decision.champion_before
    assert folder_bytes(space.bundle_dir) == before


def test_a_candidate_below_the_thresholds_fails_and_moves_nothing(
    champion_workspace, with_train, folder_bytes
):
    space = champion_workspace
    before, alias = folder_bytes(space.bundle_dir), champion(space)
    stump = lenient(with_train(space.params, model="random_forest", n_estimators=1, max_depth=1))
    # Its own folders: models/candidate stays the champion's, which other tests read.
    space.run_pipeline(stump, name="stump")  # passes no gate: fails none
    strict = space.params.gate.model_copy(update={"minimum": {"f1_macro": 1.0}})
    space.write_params(space.params.model_copy(update={"gate": strict}))
    result = CliRunner().invoke(
        promote_stage.app,
        [
            "run",
            "--candidate-dir", str(space.root / "models" / "stump_bundle"),
            "--bundle-dir", str(space.bundle_dir),
            "--test-path", str(space.test_file),
            "--params-file", str(space.root / "params.yaml"),
            "--record-file", str(space.root / "reports" / "promotion.json"),
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("promote: gate failed: f1_macro")
    record = json.loads((space.root / "reports" / "promotion.json").read_text())
    assert not record["passed_thresholds"] and not record["promoted"]
    assert folder_bytes(space.bundle_dir) == before
    assert champion(space) == alias


def test_a_better_candidate_replaces_the_champion(workspace, with_train):
    weak = lenient(with_train(workspace.params, model="random_forest", n_estimators=1, max_depth=1))
    first = workspace.run_pipeline(weak, name="weak")
    assert first.promoted
    better = workspace.run_pipeline(lenient(workspace.params), name="better")
    assert better.promoted, better.reasons
    assert better.candidate_metrics["f1_macro"] > better.champion_metrics["f1_macro"]
    assert champion(workspace) == served(workspace) == better.candidate
    assert better.champion_before == first.candidate


def test_a_champion_reading_a_column_now_ignored_yields_to_a_candidate(workspace):
    """A leaky column found after a promotion, made `ignore`: the champion that reads it would
    score as well as ever on the test split, which still holds the column; it is not scored."""
    if len(kinds()) < 2:
        pytest.skip("the configured data has a single feature: ignoring it leaves none to train on")
    first = workspace.run_pipeline(lenient(workspace.params), name="first")
    assert first.promoted
    column = next(iter(kinds()))
    data = workspace.params.data
    honest = data.model_copy(update={"columns": {**data.columns, column: "ignore"}})
    params = lenient(workspace.params.model_copy(update={"data": honest}))
    decision = workspace.run_pipeline(params, name="honest")
    assert decision.promoted and decision.champion_metrics is None, decision.reasons
    assert "no champion that can be scored" in decision.reasons[-1]
    assert champion(workspace) == served(workspace) == decision.candidate


def test_a_worse_candidate_leaves_the_champion(champion_workspace, with_train, folder_bytes):
    space = champion_workspace
    before = folder_bytes(space.bundle_dir)
    weak = lenient(with_train(space.params, model="random_forest", n_estimators=1, max_depth=1))
    decision = space.run_pipeline(weak, name="worse")
    assert decision.passed_thresholds and not decision.promoted
    assert champion(space) == served(space) == decision.champion_before
    assert folder_bytes(space.bundle_dir) == before


def test_an_experiment_moves_nothing(workspace, with_train, monkeypatch, folder_bytes):
    weak = lenient(with_train(workspace.params, model="random_forest", n_estimators=1, max_depth=1))
    workspace.run_pipeline(weak, name="weak")
    before, alias = folder_bytes(workspace.bundle_dir), champion(workspace)
    monkeypatch.setenv("DVC_EXP_NAME", "sunny-day")
    decision = workspace.run_pipeline(lenient(workspace.params), name="experiment")
    assert decision.experiment == "sunny-day"
    assert not decision.promoted
    assert "experiment sunny-day: nothing moves" in decision.reasons[-1]
    assert folder_bytes(workspace.bundle_dir) == before
    assert champion(workspace) == alias


def test_an_experiment_before_any_model_gets_a_bundle_but_not_the_alias(workspace, monkeypatch):
    """Right after generation, `dvc exp run` needs models/bundle (the stage's output); the shared
    alias waits until the experiment is applied and promoted."""
    monkeypatch.setenv("DVC_EXP_NAME", "first-light")
    decision = workspace.run_pipeline(lenient(workspace.params))
    assert not decision.promoted and champion(workspace) is None
    assert served(workspace) == decision.candidate
    assert "first-light: first model in" in decision.reasons[-1]
    assert "the alias does not move" in decision.reasons[-1]
    monkeypatch.delenv("DVC_EXP_NAME")  # applied, then `make promote`: a tie sets the alias
    after = promote_command(workspace, "run")
    assert after.exit_code == 0, after.output
    assert champion(workspace) == served(workspace) == decision.candidate


def test_out_of_sync_alias_stops_promotion_until_synced(champion_workspace, folder_bytes):
    space = champion_workspace
    client = MlflowClient()
    other = space.run_pipeline(name="other")  # version 2+, not the champion
    registry.set_champion(client, other.candidate)  # as a teammate's promotion elsewhere would
    before = folder_bytes(space.bundle_dir)
    try:
        with pytest.raises(OutOfSyncError, match="make sync-champion"):
            promote(
                space.root / "models" / "other_bundle",
                space.bundle_dir,
                space.test_file,
                space.params,
            )
        checked = promote_command(space, "check")
        assert checked.exit_code == 1
        assert len(checked.stderr.strip().splitlines()) == 1
        assert folder_bytes(space.bundle_dir) == before
    finally:
        synced = promote_command(space, "sync")
    assert synced.exit_code == 0, synced.output
    assert champion(space) == served(space)


def test_a_reset_store_gets_the_retrained_model_as_champion(
    champion_workspace_once, workspace, tmp_path
):
    """mlflow.db lost (it is not versioned), models/bundle restored by DVC, then a retrain: the
    new store's champion and models/bundle are the same model again."""
    old = read_verified(champion_workspace_once.bundle_dir).identity
    workspace.bundle_dir.mkdir(parents=True)
    for path in champion_workspace_once.bundle_dir.iterdir():
        (workspace.bundle_dir / path.name).write_bytes(path.read_bytes())

    unknown = promote_command(workspace, "check")
    assert unknown.exit_code == 1
    assert "does not know the served model" in unknown.output

    decision = workspace.run_pipeline()
    assert decision.promoted, decision.reasons
    assert decision.champion_before == old
    assert champion(workspace) == served(workspace) == decision.candidate
    assert served(workspace).run_id != old.run_id


def test_a_missing_or_damaged_served_bundle_is_one_line(champion_workspace, tmp_path):
    space = champion_workspace
    candidate = space.root / "models" / "candidate_bundle"
    with pytest.raises(OutOfSyncError, match="dvc pull"):
        promote(candidate, tmp_path / "bundle", space.test_file, space.params)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for path in space.bundle_dir.iterdir():
        (damaged / path.name).write_bytes(path.read_bytes())
    (damaged / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(BundleError, match="restore it with `dvc checkout"):
        promote(candidate, damaged, space.test_file, space.params)
