"""Heavy libraries load only in the stages that use them, so light stages start fast."""

import subprocess
import sys

import pytest

HEAVY = ("great_expectations", "mlflow", "codecarbon", "skl2onnx", "onnxruntime", "matplotlib")


@pytest.mark.parametrize(
    "module",
    [
        "{{ cookiecutter.module_name }}",
        "{{ cookiecutter.module_name }}.config",
        "{{ cookiecutter.module_name }}.dataset",
        "{{ cookiecutter.module_name }}.features",
    ],
)
def test_light_modules_do_not_import_heavy_libraries(module):
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == ""
