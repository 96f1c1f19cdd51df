"""Fast tier: every option set renders a complete, clean, lint-free project."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import (
    ALL_SETS,
    COOKIECUTTER_JSON,
    OPTION_SETS,
    PUBLIC_OPTIONS,
    TEMPLATE_DIR,
    option_values,
    parses,
    run,
    text_files,
)

BIN = Path(sys.executable).parent
# What an unrendered Jinja expression, statement or comment starts with. `${{` is a GitHub
# Actions expression and `${#` a shell length; a lone `}}` is ordinary JSON nesting.
JINJA_MARKERS = re.compile(r"(?<!\$)\{\{|\{%|%\}|(?<!\$)\{#")

# The files every render has; {module} is the package folder.
BASE_FILES = {
    ".cruft.json",
    ".env.example",
    ".gitignore",
    ".pre-commit-config.yaml",
    ".python-version",
    ".secrets.baseline",
    "Makefile",
    "README.md",
    "benchmarks/pipeline.py",
    "benchmarks/support.py",
    "data/external/.gitkeep",
    "data/interim/.gitkeep",
    "data/processed/.gitkeep",
    "data/raw/.gitkeep",
    "docs/architecture.md",
    "docs/coordination.md",
    "docs/dataset-card.md",
    "docs/decision-log.md",
    "docs/experiments.md",
    "docs/getting-started.md",
    "docs/the-task.md",
    "docs/your-data.md",
    "docs/index.md",
    "docs/m1-inception.md",
    "docs/m2-reproducibility.md",
    "docs/m3-quality.md",
    "docs/m4-api.md",
    "docs/m5-delivery.md",
    "docs/m6-monitoring.md",
    "docs/model-card.md",
    "docs/problem-statement.md",
    "docs/report-outline.md",
    "dvc.yaml",
    "expectations/README.md",
    "expectations/raw_data.json",
    "conftest.py",
    "course/milestones.py",
    "course/milestones.yaml",
    "course/test_milestones.py",
    "models/.gitkeep",
    "notebooks/README.md",
    "params.yaml",
    "pyproject.toml",
    "references/README.md",
    "reports/dvc_plots_template.html",
    "reports/figures/.gitkeep",
    "tests/modeling/conftest.py",
    "tests/modeling/test_evaluate.py",
    "tests/modeling/test_explain.py",
    "tests/modeling/test_export.py",
    "tests/modeling/test_fetch.py",
    "tests/modeling/test_promote.py",
    "tests/modeling/test_tracking.py",
    "tests/modeling/test_train.py",
    "tests/modeling/test_tune.py",
    "tests/scratch.py",
    "tests/small_bundle.py",
    "tests/test_bundle.py",
    "tests/test_card.py",
    "tests/tables.py",
    "tests/test_config.py",
    "tests/test_dataset.py",
    "tests/test_default_data.py",
    "tests/test_dvc_deps.py",
    "tests/test_features.py",
    "tests/test_imports.py",
    "tests/test_leakage.py",
    "tests/test_params.py",
    "tests/test_pipeline.py",
    "tests/test_suite.py",
    "tests/test_validation.py",
    "{module}/__init__.py",
    "{module}/builtin_data.py",
    "{module}/bundle.py",
    "{module}/card.py",
    "{module}/config.py",
    "{module}/data_new.py",
    "{module}/dataset.py",
    "{module}/errors.py",
    "{module}/features.py",
    "{module}/inference.py",
    "{module}/leakage.py",
    "{module}/modeling/__init__.py",
    "{module}/modeling/candidate.py",
    "{module}/modeling/estimators.py",
    "{module}/modeling/evaluate.py",
    "{module}/modeling/explain.py",
    "{module}/modeling/export.py",
    "{module}/modeling/fetch.py",
    "{module}/modeling/promote.py",
    "{module}/modeling/registry.py",
    "{module}/modeling/scoring.py",
    "{module}/modeling/search.py",
    "{module}/modeling/splits.py",
    "{module}/modeling/train.py",
    "{module}/modeling/tune.py",
    "{module}/params.py",
    "{module}/suite.py",
    "{module}/tracking.py",
    "{module}/validation.py",
}
# Files that exist only when an option has a given value.
OPTIONAL_FILES = {
    # A task's own files (a `<name>.<task>.<ext>` with no plain `<name>.<ext>`).
    ("task", "image"): {
        "{module}/images.py",
        "{module}/modeling/team_onnx.py",
        "models/team/README.md",
        "tests/digits_bundle.py",
        "tests/modeling/test_team_onnx.py",
        "tests/test_builtin_data.py",
    },
    ("use_api", True): {
        "{module}/api/__init__.py",
        "{module}/api/main.py",
        "{module}/api/predictions.py",
        "{module}/api/predictor.py",
        "{module}/api/routes.py",
        "{module}/api/schemas.py",
        "{module}/api/settings.py",
        "benchmarks/report.py",
        "benchmarks/servers.py",
        "benchmarks/serving.py",
        "loadtests/locustfile.py",
        "tests/api/bundles.py",
        "tests/api/conftest.py",
        "tests/api/test_api.py",
        "tests/api/test_api_footprint.py",
        "tests/api/test_api_fuzz.py",
        "tests/api/test_api_server.py",
        "tests/api/test_api_validation.py",
        "tests/api/test_bench_report.py",
        "tests/api/test_demo_ui.py",
        "tests/served.py",
        "ui/app.py",
    },
    ("use_redis_cache", True): {"{module}/api/cache.py", "tests/api/test_api_cache.py"},
    ("use_explain_api", True): {"{module}/api/explain.py", "tests/api/test_explain_endpoint.py"},
    ("use_github_actions", True): {
        ".github/ISSUE_TEMPLATE/bug.md",
        ".github/ISSUE_TEMPLATE/experiment.md",
        ".github/ISSUE_TEMPLATE/task.md",
        ".github/pull_request_template.md",
        ".github/rulesets/README.md",
        ".github/rulesets/main.json",
        ".github/workflows/ci.yml",
    },
    ("use_docker", True): {
        ".dockerignore",
        "Dockerfile",
        "compose.yaml",
        "deploy/container-structure-test.yaml",
        "ui/Dockerfile",
        "ui/Dockerfile.dockerignore",
    },
    ("use_kubernetes", True): {
        "deploy/k8s/README.md",
        "deploy/k8s/base/deployment.yaml",
        "deploy/k8s/base/hpa.yaml",
        "deploy/k8s/base/kustomization.yaml",
        "deploy/k8s/base/namespace.yaml",
        "deploy/k8s/base/service.yaml",
        "deploy/k8s/dask/Dockerfile",
        "deploy/k8s/dask/kustomization.yaml",
        "deploy/k8s/dask/namespace.yaml",
        "deploy/k8s/dask/scheduler-deployment.yaml",
        "deploy/k8s/dask/scheduler-service.yaml",
        "deploy/k8s/dask/worker-deployment.yaml",
        "deploy/k8s/overlays/dev/kustomization.yaml",
        "deploy/k8s/overlays/prod/kustomization.yaml",
        "deploy/k8s/overlays/prod/pod-disruption-budget.yaml",
    },
    ("use_monitoring", True): {
        "{module}/monitoring/__init__.py",
        "{module}/monitoring/drift.py",
        "{module}/monitoring/metrics.py",
        "{module}/monitoring/prediction_log.py",
        "{module}/monitoring/summary.py",
        "{module}/monitoring/store.py",
        "{module}/monitoring/traffic.py",
        "deploy/grafana/dashboards/prediction-service.json",
        "deploy/grafana/provisioning/dashboards/dashboards.yml",
        "deploy/grafana/provisioning/datasources/prometheus.yml",
        "deploy/prometheus/alerts.test.yml",
        "deploy/prometheus/alerts.yml",
        "deploy/prometheus/prometheus.yml",
        "tests/api/test_metrics.py",
        "tests/api/test_metrics_server.py",
        "tests/api/test_prediction_log.py",
        "tests/monitored.py",
        "tests/monitoring/conftest.py",
        "tests/monitoring/test_drift.py",
        "tests/monitoring/test_traffic.py",
    },
    ("use_docs_site", True): {"mkdocs.yml"},
    ("open_source_license", "MIT"): {"LICENSE"},
    ("open_source_license", "Apache-2.0"): {"LICENSE"},
    ("open_source_license", "BSD-3-Clause"): {"LICENSE"},
}
# Files that exist only when several options hold at once.
JOINT_FILES = {
    (("use_github_actions", True), ("use_docker", True)): {".github/workflows/release.yml"},
    (("use_github_actions", True), ("use_monitoring", True)): {".github/workflows/drift.yml"},
    (("task", "image"), ("use_monitoring", True)): {
        "{module}/monitoring/pictures.py",
        "tests/monitoring/test_served_pictures.py",
    },
    (("use_kubernetes", True), ("use_redis_cache", True)): {
        "deploy/k8s/base/redis-deployment.yaml",
        "deploy/k8s/base/redis-service.yaml",
    },
}
# Words that must not appear anywhere in a project whose option has this value.
ABSENT_WORDS = {
    ("use_github_actions", False): ["github actions", ".github"],
    ("use_docs_site", False): ["mkdocs", "make docs"],
    ("use_api", False): ["fastapi", "uvicorn", "`serve`", "group serve"],
    ("use_redis_cache", False): ["redis"],
    ("use_monitoring", False): ["evidently", "prometheus", "grafana", "make drift", "/metrics"],
    ("open_source_license", "none"): ["license"],
    ("mlflow_backend", "sqlite"): ["psycopg2", "postgres"],
    ("dvc_remote", "local"): ["dvc[", "aws_access_key", "google_application", "azure_storage"],
    ("dvc_remote", "s3"): ["dvc-remote", "gs://", "azure://"],
    ("dvc_remote", "gcs"): ["dvc-remote", "s3://", "azure://"],
    ("dvc_remote", "azure"): ["dvc-remote", "s3://", "gs://"],
}
SET_IDS = list(ALL_SETS)


def expected_files(answers: dict, module: str) -> set[str]:
    files = {name.format(module=module) for name in BASE_FILES}
    for (option, value), extra in OPTIONAL_FILES.items():
        if answers[option] == value:
            files |= {name.format(module=module) for name in extra}
    for conditions, extra in JOINT_FILES.items():
        if all(answers[option] == value for option, value in conditions):
            files |= {name.format(module=module) for name in extra}
    return files


def answers_of(project: Path) -> dict:
    return json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]


def test_matrix_renders_every_value_of_every_option():
    for name in PUBLIC_OPTIONS:
        seen = {
            json.dumps(answers.get(name, COOKIECUTTER_JSON[name]))
            for answers in OPTION_SETS.values()
        }
        wanted = {json.dumps(value) for value in option_values(name)}
        assert wanted <= seen, f"{name}: values {wanted - seen} are never rendered"


@pytest.mark.parametrize("set_id", SET_IDS)
def test_exact_set_of_files(rendered, set_id):
    project = rendered(set_id)
    answers = answers_of(project)
    actual = {
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }
    assert actual == expected_files(answers, answers["module_name"])
    folders = [p for p in project.rglob("*") if p.is_dir() and ".git" not in p.parts]
    empty = [p for p in folders if not any(p.iterdir())]
    assert empty == []


@pytest.mark.parametrize("set_id", SET_IDS)
def test_no_template_syntax_survives(rendered, set_id):
    for path, text in text_files(rendered(set_id)):
        assert text is not None, f"{path} is not UTF-8 text"
        match = JINJA_MARKERS.search(text)
        assert match is None, f"{path}: leftover {match.group()!r}"


@pytest.mark.parametrize("set_id", SET_IDS)
def test_structured_files_parse(rendered, set_id):
    parsed = sum(parses(path, text) for path, text in text_files(rendered(set_id)))
    assert parsed >= 2  # pyproject.toml and .cruft.json at least


@pytest.mark.parametrize("set_id", SET_IDS)
def test_python_compiles_and_passes_the_projects_ruff(rendered, set_id):
    project = rendered(set_id)
    for path in project.rglob("*.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    run([str(BIN / "ruff"), "check", "--no-cache", "."], cwd=project)
    run([str(BIN / "ruff"), "format", "--no-cache", "--check", "."], cwd=project)


# The test and benchmark support modules a render may have (pytest's pythonpath in the project).
SUPPORT_MODULES = {
    path.stem
    for folder in ("tests", "benchmarks")
    for path in (TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / folder).glob("*.py")
    if "." not in path.stem
}


def imported_modules(path: Path) -> list[str]:
    """The absolute module names a Python file imports, anywhere in it."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("set_id", SET_IDS)
def test_every_import_of_the_projects_own_code_exists(rendered, set_id):
    """A switched-off part takes its modules along, and nothing left imports them: no test
    collects with an ImportError (the package's modules, the tests' support modules)."""
    project = rendered(set_id)
    package = answers_of(project)["module_name"]
    present = {
        path.stem for folder in ("tests", "benchmarks") for path in (project / folder).glob("*.py")
    }
    missing = []
    for path in project.rglob("*.py"):
        for name in imported_modules(path):
            top, *rest = name.split(".")
            target = project.joinpath(top, *rest)
            if (top in SUPPORT_MODULES and top not in present) or (
                top == package and not (target.with_suffix(".py").is_file() or target.is_dir())
            ):
                missing.append(f"{path.relative_to(project)} imports {name}")
    assert not missing, missing


@pytest.mark.parametrize("set_id", SET_IDS)
def test_switched_off_parts_leave_no_mention(rendered, set_id):
    project = rendered(set_id)
    answers = answers_of(project)
    for (option, value), words in ABSENT_WORDS.items():
        if answers[option] != value:
            continue
        for path, text in text_files(project):
            if path.name == ".cruft.json":
                continue  # the recorded answers name every option
            for word in words:
                found = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text.lower())
                assert found is None, f"{option}={value}: {path} mentions {word!r}"


@pytest.mark.parametrize("set_id", SET_IDS)
def test_answers_shape_the_project(rendered, set_id):
    project = rendered(set_id)
    answers = answers_of(project)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    groups = pyproject["dependency-groups"]
    version = answers["python_version"]
    assert (project / ".python-version").read_text().strip() == version
    assert pyproject["project"]["requires-python"].startswith(f">={version},")
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + version.replace(".", "")
    assert ("serve" in groups) == answers["use_api"]
    assert ("monitoring" in groups) == answers["use_monitoring"]
    assert ("docs" in groups) == answers["use_docs_site"]
    assert (
        any(req.startswith("redis") for req in groups.get("serve", []))
        == answers["use_redis_cache"]
    )
    dvc_extra = {"local": "dvc>=", "s3": "dvc[s3]", "gcs": "dvc[gs]", "azure": "dvc[azure]"}
    assert any(req.startswith(dvc_extra[answers["dvc_remote"]]) for req in groups["pipeline"])
    postgres = any(req.startswith("psycopg2") for req in groups["pipeline"])
    assert postgres == (answers["mlflow_backend"] == "postgresql")
    if answers["open_source_license"] == "none":
        assert "license" not in pyproject["project"]
    else:
        assert pyproject["project"]["license"] == answers["open_source_license"]
        first_line = (project / "LICENSE").read_text().splitlines()[0]
        assert first_line.split()[0] in {"MIT", "Apache", "BSD"}
        assert first_line.split()[0] in answers["open_source_license"] or "Apache" in first_line


@pytest.mark.parametrize("set_id", SET_IDS)
def test_makefile_help_lists_only_existing_targets(rendered, set_id):
    project = rendered(set_id)
    shown = run(["make", "--no-print-directory", "help"], cwd=project).stdout
    targets = set(re.findall(r"^\s+(?:\x1b\[\d+m)?([a-z0-9-]+)", shown, flags=re.MULTILINE))
    assert {"setup", "test", "lint", "format", "help"} <= targets
    assert ("docs" in targets) == answers_of(project)["use_docs_site"]
    for target in targets:  # each listed target exists for make (dry run)
        subprocess.run(["make", "-n", target], cwd=project, check=True, capture_output=True)


@pytest.mark.parametrize("set_id", SET_IDS)
def test_initial_commit_holds_everything(rendered, set_id):
    project = rendered(set_id)
    log = run(["git", "log", "--format=%s"], cwd=project).stdout.splitlines()
    assert log == ["Initial commit from mlops-template"]
    assert run(["git", "status", "--porcelain"], cwd=project).stdout == ""
    tracked = set(run(["git", "ls-files"], cwd=project).stdout.splitlines())
    assert ".cruft.json" in tracked and "data/raw/.gitkeep" in tracked


@pytest.mark.parametrize("set_id", [s for s in ALL_SETS if ALL_SETS[s]["use_github_actions"]])
def test_workflows_match_the_github_schema(rendered, set_id):
    workflows = sorted((rendered(set_id) / ".github" / "workflows").glob("*.yml"))
    assert workflows
    run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, workflows),
        ],
        cwd=rendered(set_id),
    )


@pytest.mark.parametrize("set_id", [s for s in ALL_SETS if ALL_SETS[s]["use_docs_site"]])
def test_generated_docs_site_builds_offline(rendered, set_id, tmp_path):
    project = rendered(set_id)
    run(
        [str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=project,
    )
    assert (tmp_path / "site" / "getting-started" / "index.html").is_file()


def rendered_path(project: Path, template_path: Path) -> Path:
    """Where a file of the template's project folder lands in `project`."""
    module = answers_of(project)["module_name"]
    return project / template_path.as_posix().replace("{{cookiecutter.module_name}}", module)


def test_each_task_renders_its_own_version_of_the_files_that_vary(rendered):
    """A template file `<name>.<task>.<ext>` is the `<task>` project's `<name>.<ext>`: the hook
    knows every task but the first (whose version is the plain file), and each task's project
    gets its own version of every such file; a file only one task has is in that task's project
    alone."""
    tasks = option_values("task")
    hook = (TEMPLATE_DIR / "hooks" / "post_gen_project.py").read_text(encoding="utf-8")
    [known] = re.findall(r"^TASK_VARIANTS = (.+)$", hook, flags=re.MULTILINE)
    assert ast.literal_eval(known) == tuple(tasks[1:])
    template = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
    variants = [p for p in template.rglob("*.*.*") if p.name.rsplit(".", 2)[1] in tasks]
    assert len(variants) >= 3
    projects = {
        answers["task"]: rendered(set_id)
        for set_id, answers in reversed(OPTION_SETS.items())  # the default set last, so first
    }
    assert sorted(projects) == sorted(tasks)
    for variant in variants:
        stem, task, extension = variant.name.rsplit(".", 2)
        relative = variant.with_name(f"{stem}.{extension}").relative_to(template)
        own, plain = (rendered_path(projects[name], relative) for name in (task, tasks[0]))
        if not own.exists() and not plain.exists():
            continue  # an optional part these renders switch off (use_explain_api's tests)
        if (template / relative).exists():
            assert own.read_text(encoding="utf-8") != plain.read_text(encoding="utf-8"), relative
        else:
            having = [
                name
                for name, project in projects.items()
                if rendered_path(project, relative).exists()
            ]
            assert having == [task], relative
