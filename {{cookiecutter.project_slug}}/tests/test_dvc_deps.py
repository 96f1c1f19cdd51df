"""dvc.yaml lists, for every stage, each package module that the stage imports.

DVC re-runs a stage when one of its dependencies changes, so a module missing from `deps` is an
edit that silently does not re-run what it changes. The imports are read from the code itself.
"""

import pytest
import yaml
from test_imports import PACKAGE, imported_closure, module_file

from {{ cookiecutter.module_name }}.config import (
    PROJ_ROOT,
)

PIPELINE = yaml.safe_load((PROJ_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
# Package modules whose classes can be inside the pickled candidate (a team's network): a stage
# that loads the candidate runs their code without importing them.
PICKLED = [f"{PACKAGE}/modeling/team_onnx.py"]
READS_CANDIDATE = f"{PACKAGE}.modeling.candidate"


def stage_module(command: str) -> str:
    """`python -m <package>.x.y [args]` -> `<package>.x.y`."""
    words = command.split()
    return words[words.index("-m") + 1]


@pytest.mark.parametrize("stage", sorted(PIPELINE))
def test_stage_depends_on_exactly_the_modules_it_imports(stage):
    definition = PIPELINE[stage]
    module = stage_module(definition["cmd"])
    closure = imported_closure(module)
    imported = {module_file(name).relative_to(PROJ_ROOT).as_posix() for name in closure}
    if READS_CANDIDATE in closure:
        imported |= {path for path in PICKLED if (PROJ_ROOT / path).exists()}
    listed = {dep for dep in definition["deps"] if dep.startswith(f"{PACKAGE}/")}
    assert listed == imported, (
        f"stage {stage}: add {sorted(imported - listed)} to its deps, "
        f"remove {sorted(listed - imported)}"
    )
