"""The whole pipeline through DVC, in a scratch copy of the project.

Slow: it runs every stage for real (Great Expectations, MLflow, CodeCarbon, ONNX). It checks the
promises of the pipeline: it runs end to end and a re-run with nothing changed does no work; and
whatever happens next (an experiment and its discard, a forced re-run, corrupt data, a lost
MLflow store), the registry's `champion` alias and models/bundle name the same model.
The tests run in file order on one scratch project (`finished_pipeline` of the root conftest.py,
shared with course/test_milestones.py), each starting where the last one stopped; the label
leakage test has a scratch project of its own.
"""

import hashlib
import math
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from scratch import commit, run
from support import scratch_copy
from tables import kinds, raw_frame
from test_dataset import BAD_CSV
from test_leakage import hide_the_label

from {{ cookiecutter.module_name }}.bundle import (
    read_verified,
)
from {{ cookiecutter.module_name }}.modeling.promote import (
    PERFECT_SUSPECT_ROWS,
)

pytestmark = pytest.mark.slow
PACKAGE = "{{ cookiecutter.module_name }}"


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def champion_line(root: Path, env: dict) -> str:
    """What `promote check` says; it fails the test when alias and bundle disagree."""
    return run([sys.executable, "-m", f"{PACKAGE}.modeling.promote", "check"], root, env).stdout


def state(root: Path, env: dict) -> tuple[str, str]:
    """The served bundle's bytes and the registry's champion, to check that nothing moved."""
    return tree_digest(root / "models" / "bundle"), champion_line(root, env)


def set_params(root: Path, section: str, **values) -> None:
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def test_pipeline_runs_end_to_end_then_does_no_work(finished_pipeline):
    root, env = finished_pipeline  # after its first `dvc repro`
    promotion = yaml.safe_load((root / "reports" / "promotion.json").read_text())
    assert promotion["promoted"] is True
    metadata = read_verified(root / "models" / "bundle")
    assert metadata.identity.model_dump() == promotion["champion_after"]
    assert str(metadata.identity) in champion_line(root, env)
    for figure in ("confusion_matrix", "roc_curve", "precision_recall_curve"):
        assert (root / "reports" / "figures" / f"{figure}.png").stat().st_size > 1000

    again = run(["dvc", "repro"], root, env).stdout
    assert "Data and pipelines are up to date" in again
    assert "Running stage" not in again


def test_an_experiment_with_a_yaml_float_trains_and_its_discard_moves_nothing(finished_pipeline):
    root, env = finished_pipeline
    before = state(root, env)
    # A float PyYAML reads as a string: a C the forest does not use, or a weaker one that still
    # passes the gate for a linear model (the experiment must run to its end).
    model = yaml.safe_load((root / "params.yaml").read_text())["train"]["model"]
    value = "1e-6" if model == "random_forest" else "1e1"
    ran = run(["dvc", "exp", "run", "-S", f"train.C={value}"], root, env).stdout
    assert "Running stage 'train'" in ran and "Running stage 'data'" not in ran
    assert f"C: {float(value)}" in (root / "params.yaml").read_text()  # a float here
    promotion = yaml.safe_load((root / "reports" / "promotion.json").read_text())
    assert promotion["experiment"] and not promotion["promoted"]
    assert state(root, env) == before

    run(["git", "checkout", "--", "."], root, env)
    run(["dvc", "checkout"], root, env)
    assert state(root, env) == before


def test_a_forced_rerun_with_equal_scores_keeps_the_champion(finished_pipeline):
    root, env = finished_pipeline
    before = state(root, env)
    run(["dvc", "repro", "--force", "--downstream", "train"], root, env)
    promotion = yaml.safe_load((root / "reports" / "promotion.json").read_text())
    assert not promotion["promoted"]
    assert promotion["candidate"]["version"] > promotion["champion_after"]["version"]
    assert state(root, env) == before
    run(["git", "checkout", "--", "."], root, env)


def test_each_bad_csv_stops_the_pipeline_in_one_line_and_moves_nothing(finished_pipeline):
    root, env = finished_pipeline
    before = state(root, env)
    for kind, (content, message) in sorted(BAD_CSV.items()):
        (root / "data" / "external" / "team.csv").write_bytes(content)
        set_params(root, "data", source="csv", csv="data/external/team.csv", target="label")
        try:
            failed = run(["dvc", "repro"], root, env, check=False)
        finally:
            run(["git", "checkout", "--", "params.yaml"], root, env)
        ours = [line for line in failed.stderr.splitlines() if line.startswith("data: ")]
        assert failed.returncode != 0, kind
        assert len(ours) == 1 and message in ours[0], (kind, failed.stderr)
        assert "Traceback" not in failed.stderr, kind
    assert state(root, env) == before


def test_after_a_store_reset_a_retrain_makes_bundle_and_alias_agree(finished_pipeline):
    root, env = finished_pipeline
    run(["dvc", "checkout"], root, env)
    old = read_verified(root / "models" / "bundle").identity
    (root / "mlflow.db").unlink()
    shutil.rmtree(root / "mlruns")
    lost = run([sys.executable, "-m", f"{PACKAGE}.modeling.promote", "check"], root, env, False)
    assert lost.returncode == 1 and "does not know the served model" in lost.stderr

    # A parameter the model does not use: a new run of the same model, as good as the champion.
    model = yaml.safe_load((root / "params.yaml").read_text())["train"]["model"]
    set_params(root, "train", **({"C": 0.5} if model == "random_forest" else {"n_estimators": 7}))
    run(["dvc", "repro"], root, env)
    new = read_verified(root / "models" / "bundle").identity
    assert new.run_id != old.run_id and new.sha256 == old.sha256  # same model, new identity
    assert str(new) in champion_line(root, env)


def test_label_leakage_is_stopped_and_an_honest_model_can_replace_a_leaky_champion(tmp_path):
    """The label hidden in a column, inside its usual range: every expectation holds, so without
    the leakage checks the gate promoted a perfect model that no honest candidate could beat."""
    root = tmp_path / "project"
    env = scratch_copy(root)
    numeric = [name for name, kind in kinds().items() if kind == "numeric"]
    if not numeric:
        pytest.skip("the configured data has no numeric column to hide the label in")
    column = numeric[0]
    params = yaml.safe_load((root / "params.yaml").read_text())
    target = params["data"]["target"]
    leaky = hide_the_label(raw_frame(), target, column)
    (root / "data" / "external").mkdir(parents=True, exist_ok=True)
    leaky.to_csv(root / "data" / "external" / "leaky.csv", index=False)
    set_params(root, "data", source="csv", csv="data/external/leaky.csv")
    commit(root, env, "leaky data")

    stopped = run(["dvc", "repro"], root, env, check=False)
    ours = [line for line in stopped.stderr.splitlines() if line.startswith("validate: ")]
    assert stopped.returncode != 0 and len(ours) == 1, stopped.stderr
    assert ours[0].startswith(f"validate: {column} (1.00) alone predicts {target} almost")
    assert not (root / "models" / "bundle").exists()

    set_params(root, "data", allow_leaky_features=[column])
    test_rows = math.ceil(params["features"]["test_size"] * len(leaky.drop_duplicates()))
    if test_rows >= PERFECT_SUSPECT_ROWS:
        refused = run(["dvc", "repro"], root, env, check=False)
        assert refused.returncode != 0
        assert "promote: gate failed: every test metric is 1.0 on " in refused.stderr
        assert not (root / "models" / "bundle").exists()
        set_params(root, "gate", allow_perfect=True)
    run(["dvc", "repro"], root, env)
    perfect = yaml.safe_load((root / "reports" / "promotion.json").read_text())
    assert perfect["promoted"] and min(filter(None, perfect["candidate_metrics"].values())) == 1

    # The column made `ignore`, while the test split still holds it: the champion would score
    # 1.0 on it forever; it reads an ignored column, so it is not scored and yields.
    set_params(root, "data", columns={**params["data"]["columns"], column: "ignore"})
    run(["dvc", "repro"], root, env)
    honest = yaml.safe_load((root / "reports" / "promotion.json").read_text())
    assert honest["promoted"] and honest["champion_metrics"] is None, honest["reasons"]
    assert honest["champion_before"] == perfect["candidate"]
    assert column not in [f.name for f in read_verified(root / "models" / "bundle").features]
    assert str(read_verified(root / "models" / "bundle").identity) in champion_line(root, env)
