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

HEAVY = ("great_expectations", "mlflow", "codecarbon", "skl2onnx", "onnxruntime", "matplotlib")
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
    f"{PACKAGE}.modeling.promote": {"mlflow", "onnxruntime"},
    f"{PACKAGE}.modeling.fetch": {"mlflow"},
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
        "modeling.promote",
        "card",
    )
}


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
