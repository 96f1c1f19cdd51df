"""Slow tier: each option set's project installs and passes its own checks, as a new team's would.

The default project goes through `make demo` (render, `make setup`, `make pipeline`, a baseline
commit, `make test-fast`), then its full `make test`, its README's commands as written, DVC's
experiment, metrics, plots and remote round trips. Every other option set but the text and image
tasks' (tests/test_task_text.py and tests/test_task_image.py install and check those) is
rendered and runs its own `make setup` (uv bootstrapped with pip, since a new user has none),
`make lint`, `make test-fast`, `make docs` where the site is on, and the slow tests its options
add.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid

import pytest
import yaml

from conftest import ALL_SETS, OPTION_SETS, TEMPLATE_DIR, render, run
from installed import REMOTE_SECTION, check_installed_project, check_pipeline_ran, dvc_config
from project_shell import readme_blocks, run_block, serving, skipped_lines, user_env

pytestmark = pytest.mark.slow


def outcome(output: str) -> str:
    """pytest's summary line, e.g. '193 passed in 131.13s'."""
    lines = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    return lines[-1].strip("= ") if lines else output[-500:]


@pytest.fixture(scope="module")
def demo(tmp_path_factory, progress):
    """`make demo` of the template: the default project rendered, installed, run and tested."""
    folder = tmp_path_factory.mktemp("demo")
    env = user_env(OPTION_SETS["default"]["python_version"])
    progress("make demo: render, setup, pipeline, commit, fast tests (about 4 min)")
    done = run(["make", "demo", f"DEMO_DIR={folder}"], cwd=TEMPLATE_DIR, env=env)
    return folder / "breast-cancer-diagnosis", env, done.stdout


def test_make_demo_ends_with_a_summary_and_a_baseline_commit(demo):
    project, _env, output = demo
    summary = output[output.index("Demo passed") :]
    for step in ("render", "install", "pipeline", "commit", "test"):
        assert re.search(rf"\b{step} \d+ s\b", summary), f"no time for {step}: {summary}"
    assert "models/bundle" in summary and "mlflow.db" in summary
    assert not re.search(r"^ \+ \S+==", output, flags=re.MULTILINE), "package lists in the log"
    assert "Next: cd" not in output, "the render's hint interrupts the demo"
    # One "what to commit" message: the project's, not DVC's `git add` and autostage hints too.
    assert output.count("Commit this run") == 1
    assert "To track the changes with git" not in output  # DVC's advice, when not autostaging
    assert "To enable auto staging" not in output
    check_pipeline_ran(project)
    log = run(["git", "log", "--format=%s"], cwd=project).stdout.splitlines()
    assert log == ["Run the pipeline", "Initial commit from mlops-template"]
    assert run(["git", "status", "--porcelain"], cwd=project).stdout == ""


def test_default_data_explanations_rank_a_size_or_concavity_measure_high(demo):
    """Default data only (breast cancer, which `make demo` always renders): SHAP's top five
    features of the candidate hold a size or concavity measure, and the model card says so."""
    project, _env, _ = demo
    explained = json.loads((project / "reports" / "explanations" / "explanations.json").read_text())
    top = [item["name"] for item in explained["values"]["overall"][:5]]
    assert explained["method"] == "shap permutation"
    assert len(explained["values"]["overall"]) == 20  # the 20 largest of the 30 features
    measures = ("radius", "perimeter", "area", "concav")
    assert any(measure in name for name in top for measure in measures), top
    card = (project / "docs" / "model-card.md").read_text()
    assert top[0] in card[card.index("pipeline:explanations:start") :]


def test_default_project_lints_tests_and_documents_itself(demo, progress):
    project, env, _ = demo
    # `make demo` ran the fast tests, and `make test` runs them again with the slow ones.
    check_installed_project(project, OPTION_SETS["default"], env, fast_tests=False)
    progress("default project: make test, every tier (about 8 min)")
    tested = run(["make", "test"], cwd=project, env=env, timeout=1800).stdout
    assert " passed" in tested and "failed" not in tested and "skipped" not in tested, tested
    progress(f"default project: {outcome(tested)}")


def test_a_fresh_shell_finds_the_uv_that_set_the_project_up(demo):
    project, env, _ = demo
    assert shutil.which("uv", path=env["PATH"]) is None  # a new user's shell has no uv
    output = run(["make", "pipeline"], cwd=project, env=env).stdout
    assert "Installing uv" not in output
    assert not (project / ".tools").exists()
    assert "Data and pipelines are up to date" in output


def test_default_project_experiments_compares_and_round_trips_data(demo, tmp_path):
    project, env, _ = demo
    bin_env = {**env, "PATH": os.pathsep.join([str(project / ".venv" / "bin"), env["PATH"]])}
    dvc = [str(project / ".venv" / "bin" / "dvc")]
    experiment = run([*dvc, "exp", "run", "-S", "train.n_estimators=50"], project, bin_env).stdout
    assert "Running stage 'train'" in experiment and "Running stage 'data'" not in experiment
    shown = run([*dvc, "exp", "show", "--no-pager", "--csv"], project, bin_env).stdout
    assert "train.n_estimators" in shown and ",50," in shown
    assert "f1" in run([*dvc, "metrics", "diff", "--all"], project, bin_env).stdout
    run([*dvc, "plots", "diff", "--out", str(tmp_path / "plots")], project, bin_env)
    assert (tmp_path / "plots" / "index.html").is_file()
    run(["git", "checkout", "--", "."], project, bin_env)
    run([*dvc, "checkout"], project, bin_env)

    # `dvc plots show` writes dvc_plots/, which git ignores; offline, its page says where the
    # same curves are, since Vega comes from a CDN.
    run([*dvc, "plots", "show"], project, bin_env)
    page = (project / "dvc_plots" / "index.html").read_text()
    assert 'id="needs-network"' in page and "reports/figures/" in page
    assert run(["git", "status", "--porcelain"], project, bin_env).stdout == ""

    # The local remote: push, lose the cache and the data, pull them back.
    raw = project / "data" / "raw" / "dataset.csv"
    digest = raw.read_bytes()
    run([*dvc, "push"], project, bin_env)
    shutil.rmtree(project / ".dvc" / "cache")
    raw.chmod(0o644)
    raw.unlink()
    run([*dvc, "pull"], project, bin_env)
    assert raw.read_bytes() == digest


def test_readme_commands_work_as_written_from_a_fresh_shell(demo, progress, tmp_path):
    """Every shell block of the README and docs/ runs, in a new shell, as written; blocks that
    talk to the service run while `make serve` is up. Nothing is skipped silently: a block this
    test cannot run must be listed with its reason in project_shell.NOT_RUN."""
    project, env, _ = demo
    blocks = readme_blocks(project)
    assert blocks, "no shell blocks found"
    # The README's example of a team's own data file.
    own = project / "data" / "external" / "my_data.csv"
    shutil.copy(project / "data" / "raw" / "dataset.csv", own)
    own.chmod(0o644)
    try:
        with serving(project, env, tmp_path / "serve.log"):
            for source, block in blocks:
                progress(f"README block from {source}: {block.splitlines()[0][:70]}")
                run_block(project, env, source, block)
    finally:
        run(["git", "checkout", "--", "."], project, env)
        run(["git", "clean", "-fdq", "data/external"], project, env)
        run([str(project / ".venv" / "bin" / "dvc"), "checkout", "--force"], project, env)


def test_the_shipped_suite_is_what_the_suite_command_writes_from_the_default_data(demo, tmp_path):
    project, env, _ = demo
    package = project.name.replace("-", "_")
    written = tmp_path / "raw_data.json"
    run(
        [".venv/bin/python", "-m", f"{package}.suite", "--output-path", str(written)],
        cwd=project,
        env=env,
    )
    assert written.read_text() == (project / "expectations" / "raw_data.json").read_text()


# What `make tune` left in MLflow and the registry, read with the project's own MLflow.
TUNING_RUNS = """
import json, mlflow
from mlflow import MlflowClient
mlflow.set_tracking_uri("sqlite:///mlflow.db")
runs = mlflow.search_runs(experiment_names=["breast-cancer-diagnosis-tuning"])
client = MlflowClient()
print(json.dumps({
    "runs": runs.fillna("").to_dict("records"),
    "champion": client.get_model_version_by_alias("breast_cancer_diagnosis", "champion").version,
}, default=str))
"""


def test_make_tune_runs_trials_on_a_local_dask_cluster_and_moves_nothing(demo, progress):
    """`make tune` on a Dask LocalCluster, twice: the study resumes, each run is an MLflow parent
    with its trials nested, best_params.yaml holds the best, and params.yaml, the served bundle
    and the champion alias stay as they were."""
    project, env, _ = demo
    params_file = project / "params.yaml"
    document = yaml.safe_load(params_file.read_text())
    study = f"slow-test-{uuid.uuid4().hex[:8]}"  # a new study, whatever ran before
    document["tune"].update(trials=4, cluster="local", workers=2, study=study)
    params_file.write_text(yaml.safe_dump(document, sort_keys=False))
    edited = params_file.read_bytes()
    bundle = (project / "models" / "bundle" / "model.onnx").read_bytes()
    before = json.loads(run([".venv/bin/python", "-c", TUNING_RUNS], project, env).stdout)
    try:
        progress("default project: make tune twice on a 2-worker Dask LocalCluster (~30 s)")
        first = run(["make", "tune"], project, env).stdout
        second = run(["make", "tune"], project, env).stdout
    finally:
        after = json.loads(run([".venv/bin/python", "-c", TUNING_RUNS], project, env).stdout)
        assert params_file.read_bytes() == edited, "make tune wrote params.yaml"
        run(["git", "checkout", "--", "params.yaml"], project, env)
    assert "starting a Dask LocalCluster of 2 workers" in first
    assert "4 trials run" in first and "(trial" in first and "of 4)" in first
    assert "of 8)" in second  # the same study, resumed: 4 more trials
    best = yaml.safe_load((project / "reports" / "tuning" / "best_params.yaml").read_text())
    assert best["study"] == study and best["trials"] == 8 and best["metric"] == "f1_macro"
    assert 0.8 < best["score"] <= 1.0
    assert best["train"]["model"] in ("random_forest", "logistic_regression", "mlp")
    command = (project / "reports" / "tuning" / "apply.sh").read_text().splitlines()[-1]
    assert command == best["command"] and command in second
    assert command.startswith(f"dvc exp run -S train.model={best['train']['model']}")

    runs = [r for r in after["runs"] if r["run_id"] not in {b["run_id"] for b in before["runs"]}]
    parents = sorted(
        (r for r in runs if not r["tags.mlflow.parentRunId"]), key=lambda r: r["start_time"]
    )
    assert [p["tags.mlflow.runName"] for p in parents] == [f"tune {study}"] * 2
    assert {p["status"] for p in parents} == {"FINISHED"}
    scores = []  # each parent holds the study's best so far, the resumed run's included
    for parent in parents:
        children = [r for r in runs if r["tags.mlflow.parentRunId"] == parent["run_id"]]
        assert len(children) == 4 and {child["status"] for child in children} == {"FINISHED"}
        scores += [child["metrics.validation_f1_macro"] for child in children]
        assert parent["metrics.best_validation_f1_macro"] == pytest.approx(max(scores))
    assert best["score"] == pytest.approx(max(scores))
    assert best["mlflow_parent_run"] in {p["run_id"] for p in parents}
    assert after["champion"] == before["champion"], "make tune moved the champion"
    assert (project / "models" / "bundle" / "model.onnx").read_bytes() == bundle
    assert run(["git", "status", "--porcelain"], project, env).stdout == ""


# The default set goes through `make demo` above; the text and image tasks' sets are installed
# and checked by tests/test_task_text.py and tests/test_task_image.py, which go on with them.
@pytest.mark.parametrize(
    "set_id", [s for s in ALL_SETS if s not in ("default", "cycle-1", "cycle-2")]
)
def test_generated_project_sets_up_lints_and_tests(tmp_path, set_id, progress):
    answers = ALL_SETS[set_id]
    env = user_env(answers["python_version"])
    project = render(tmp_path, answers)
    progress(f"{set_id}: make setup, lint, test-fast (about 3 min)")
    run(["make", "setup"], cwd=project, env=env)
    assert (project / ".tools" / "bin" / "uv").exists(), "uv should have been bootstrapped"
    check_installed_project(project, answers, env)
    if answers["use_redis_cache"]:
        progress(f"{set_id}: the service's slow tests, with a real Redis-protocol server")
        served = run(
            [".venv/bin/pytest", "-m", "slow", "tests/api", "-q", "-rs", "-p", "no:cacheprovider"],
            cwd=project,
            env=env,
        ).stdout
        assert "failed" not in served and not skipped_lines(served), served


def test_hook_initialises_dvc_when_it_is_on_path(demo, tmp_path, monkeypatch):
    """With DVC available at generation, the initial commit already holds a configured .dvc/."""
    installed, env, _ = demo
    monkeypatch.setenv("PATH", os.pathsep.join([str(installed / ".venv" / "bin"), env["PATH"]]))
    project = render(tmp_path, {**OPTION_SETS["default"], "dvc_remote": "s3"})
    tracked = run(["git", "ls-files"], cwd=project).stdout.splitlines()
    assert {".dvc/config", ".dvc/.gitignore", ".dvcignore"} <= set(tracked)
    assert run(["git", "status", "--porcelain"], cwd=project).stdout == ""
    config = dvc_config(project)
    assert config["core"]["analytics"] == "false"
    assert config[REMOTE_SECTION]["url"] == "s3://mlops-course-dvc/breast-cancer-diagnosis"
