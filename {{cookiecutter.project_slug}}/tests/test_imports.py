"""Heavy libraries load only in the stages that use them, so each stage starts as fast as it can."""

import subprocess
import sys

import pytest

HEAVY = ("great_expectations", "mlflow", "codecarbon", "skl2onnx", "onnxruntime", "matplotlib")
PACKAGE = "{{ cookiecutter.module_name }}"
# Module -> the heavy libraries it may load when imported (validation loads Great Expectations
# only when its command runs).
ALLOWED = {
    PACKAGE: set(),
    f"{PACKAGE}.config": set(),
    f"{PACKAGE}.dataset": set(),
    f"{PACKAGE}.validation": set(),
    f"{PACKAGE}.features": set(),
    f"{PACKAGE}.modeling.train": {"mlflow"},
    f"{PACKAGE}.modeling.evaluate": {"mlflow", "matplotlib"},
    f"{PACKAGE}.modeling.export": {"mlflow", "matplotlib", "skl2onnx", "onnxruntime"},
}


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_modules_load_only_the_heavy_libraries_they_use(module):
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(filter(None, done.stdout.strip().split(",")))
    assert loaded <= ALLOWED[module], f"{module} also loads {sorted(loaded - ALLOWED[module])}"
