"""Imports: heavy libraries load only in the modules that use them, and no stage imports another.

A stage shares code with another stage through a module that is not a stage (splits, scoring,
candidate, registry, bundle...), so running or editing one stage never drags in another.
"""

import ast
import subprocess
import sys

import pytest

from {{ cookiecutter.module_name }}.config import (
    PROJ_ROOT,
)

HEAVY = (
    "great_expectations", "mlflow", "codecarbon", "skl2onnx", "onnxruntime", "matplotlib",
    "optuna", "distributed",
)  # fmt: skip
PACKAGE = "{{ cookiecutter.module_name }}"
# Module -> the heavy libraries it may load when imported (Great Expectations and CodeCarbon
# load only when the command that needs them runs).
ALLOWED = {
    PACKAGE: set(),
    f"{PACKAGE}.config": set(),
    f"{PACKAGE}.params": set(),
    f"{PACKAGE}.bundle": set(),
    f"{PACKAGE}.dataset": set(),
    f"{PACKAGE}.validation": set(),
    f"{PACKAGE}.suite": set(),
    f"{PACKAGE}.features": set(),
    f"{PACKAGE}.card": set(),
    f"{PACKAGE}.inference": {"onnxruntime"},
    f"{PACKAGE}.tracking": {"mlflow"},
    f"{PACKAGE}.modeling.train": {"mlflow"},
    f"{PACKAGE}.modeling.evaluate": {"mlflow", "matplotlib"},
    f"{PACKAGE}.modeling.export": {"mlflow", "skl2onnx", "onnxruntime"},
    f"{PACKAGE}.modeling.explain": {"mlflow", "matplotlib", "onnxruntime"},
    f"{PACKAGE}.modeling.promote": {"mlflow", "onnxruntime"},
    f"{PACKAGE}.modeling.fetch": {"mlflow"},
    # make tune: Dask only with tune.cluster set; a trial (what a Dask worker runs) needs neither.
    f"{PACKAGE}.modeling.tune": {"mlflow", "optuna"},
    f"{PACKAGE}.modeling.search": set(),
    f"{PACKAGE}.modeling.estimators": set(),
{%- if cookiecutter.use_api %}
    f"{PACKAGE}.api.main": {"onnxruntime"},
{%- endif %}
}
STAGES = {
    f"{PACKAGE}.{name}"
    for name in (
        "dataset",
        "validation",
        "features",
        "modeling.train",
        "modeling.evaluate",
        "modeling.export",
        "modeling.explain",
        "modeling.promote",
        "card",
    )
}

# docs/architecture.md's layers, bottom up: a module imports from its own layer and those before
# it. A module in `api/` or `monitoring/` is in the service or monitoring layer unless named here.
LAYERS = {
    "ground": {"", "config", "params", "errors"},
    "contracts": {
        "bundle",
        "images",
        "inference",
        "modeling.candidate",
        "api.schemas",
        "monitoring.summary",
    },
    "shared": {
        "builtin_data",
        "tracking",
        "leakage",
        "modeling",
        "modeling.splits",
        "modeling.scoring",
        "modeling.registry",
        "modeling.team_onnx",
        "modeling.estimators",
        "modeling.search",
    },
    "stages": {module.removeprefix(f"{PACKAGE}.") for module in STAGES},
    "commands": {"suite", "data_new", "modeling.fetch", "modeling.tune"},
    "service": set(),
    "monitoring": set(),
}
# The one exception the map names: the service's main.py assembles the monitoring parts (PARTS).
UPWARD = {("api.main", f"monitoring{part}") for part in ("", ".metrics", ".prediction_log")}


def layer_of(module: str) -> int:
    """The position in LAYERS of a package module (named without the package)."""
    order = list(LAYERS)
    for name, members in LAYERS.items():
        if module in members:
            return order.index(name)
    folder = module.split(".")[0]
    if folder in ("api", "monitoring"):
        return order.index("service" if folder == "api" else "monitoring")
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to docs/architecture.md")


def module_file(module: str):
    path = PROJ_ROOT.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def package_imports(module: str) -> set[str]:
    """The package's modules that `module` imports directly, anywhere in its code."""
    path = module_file(module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" for alias in node.names]
            found |= {name for name in [target, *names] if module_file(name).is_file()}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith(PACKAGE)}
    return {name for name in found if name.split(".")[0] == PACKAGE} - {module}


def imported_closure(module: str) -> set[str]:
    """Every package module that importing `module` runs, parent packages included."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        parts = current.split(".")
        todo += [".".join(parts[:depth]) for depth in range(1, len(parts))]
        todo += sorted(package_imports(current))
    return seen


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_modules_load_only_the_heavy_libraries_they_use(module):
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(filter(None, done.stdout.strip().split(",")))
    assert loaded <= ALLOWED[module], f"{module} also loads {sorted(loaded - ALLOWED[module])}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_no_stage_imports_another_stage(stage):
    others = (imported_closure(stage) & STAGES) - {stage}
    assert not others, f"{stage} imports the stage(s) {sorted(others)}"


def test_the_package_holds_no_template_syntax_and_imports_itself_relatively():
    for path in sorted((PROJ_ROOT / PACKAGE).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        absolute = [
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and not node.level and node.module
            if node.module.split(".")[0] == PACKAGE
        ]
        assert not absolute, f"{path.name} imports {absolute} by name; use a relative import"


def test_every_module_imports_only_its_own_layer_and_those_below():
    root = PROJ_ROOT / PACKAGE
    upward = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for imported in sorted(package_imports(f"{PACKAGE}.{name}" if name else PACKAGE)):
            target = imported.removeprefix(PACKAGE).removeprefix(".")
            if layer_of(target) > layer_of(name) and (name, target) not in UPWARD:
                layers = list(LAYERS)
                upward.append(
                    f"{name or PACKAGE} ({layers[layer_of(name)]}) imports {target} "
                    f"({layers[layer_of(target)]})"
                )
    assert not upward, f"imports up the layers (move the shared code down): {upward}"
