"""The generated project's map of itself (docs/architecture.md) and the size of its modules.

The map names the tests that enforce its rules and the files where a team writes its code; these
tests fail when a name or a `# ---- TEAM` place changes without the map, so the map cannot rot.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import ALL_SETS

# `tests/test_imports.py::test_name`: how the map names a test (pytest's node id, to copy).
NODE_ID = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")
TEAM_MARK = "# ---- TEAM"
# A package module this long says at the top of its docstring why it is longer than most.
LONG_MODULE = 300


def map_of(project: Path) -> str:
    return (project / "docs" / "architecture.md").read_text(encoding="utf-8")


def package_of(project: Path) -> Path:
    [package] = [p.parent for p in project.glob("*/__init__.py")]
    return package


def defined_tests(path: Path) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """The module-level test functions of a test file, by name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def is_slow(function: ast.FunctionDef | ast.AsyncFunctionDef, path: Path) -> bool:
    """Marked slow, by a decorator or by the file's `pytestmark`."""
    marks = [ast.unparse(decorator) for decorator in function.decorator_list]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    marks += [
        ast.unparse(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(getattr(target, "id", None) == "pytestmark" for target in node.targets)
    ]
    return any("slow" in mark for mark in marks)


@pytest.mark.parametrize("set_id", list(ALL_SETS))
def test_every_test_the_map_names_exists_and_is_fast(rendered, set_id):
    project = rendered(set_id)
    text = map_of(project)
    named = NODE_ID.findall(text)
    assert len(named) >= 5, "the map names the tests behind its rules"
    bare = set(re.findall(r"(?<![\w/:])test_\w+\b(?!\.py)", text))
    assert bare <= {name for _, name in named}, "name a test as `tests/<file>.py::<test>`"
    for file, name in named:
        path = project / file
        assert path.is_file(), f"docs/architecture.md names {file}, which the project lacks"
        functions = defined_tests(path)
        assert name in functions, f"docs/architecture.md names {file}::{name}, which is gone"
        assert not is_slow(functions[name], path), f"{file}::{name} is not in the fast tier"
    # The other way round: every import rule of tests/test_imports.py is on the map.
    rules = defined_tests(project / "tests" / "test_imports.py")
    missing = sorted(set(rules) - {name for _, name in named})
    assert not missing, f"docs/architecture.md does not name {missing}"


@pytest.mark.parametrize("set_id", ["default", "minimal"])
def test_the_map_lists_every_team_place_of_the_package(rendered, set_id):
    project = rendered(set_id)
    package = package_of(project)
    marked = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if TEAM_MARK in path.read_text(encoding="utf-8")
    }
    section = map_of(project).split("## Where the team writes its code", 1)[1].split("\n## ")[0]
    listed = set(re.findall(r"^\| `([\w/]+\.py)` \|", section, flags=re.MULTILINE))
    assert marked, f"no {TEAM_MARK} place in the package"
    assert listed == marked, f"the map lists {sorted(listed)}, the package marks {sorted(marked)}"


def test_every_long_module_says_why(rendered):
    """Issue 21: no package module over 300 lines without its reason at the top."""
    package = package_of(rendered("default"))
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) <= LONG_MODULE:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        assert "longer than most" in docstring.lower(), (
            f"{path.relative_to(package)} has {len(text.splitlines())} lines: say why at the end "
            'of its docstring ("The module is longer than most because ..."), or split it'
        )


# Issue 21 asks for at most 4,500 lines; trimming without dropping behaviour reached 5,503 in the
# default render (docs/contributing.md says what the rest is). The image task's seams in shared
# modules (the picture rules of suite.py, splits' pixel columns, data-new's folder, the picture
# measures' drift and traffic) brought 5,842, export reading model.onnx's own opsets 5,863;
# issue 23's `make tune` (modeling/tune.py, search.py, estimators.py moved out of train.py, its
# typed params) about 6,350, its explain stage (modeling/explain.py, the card's block) and
# /explain's baselines in the bundle 6,596. This ceiling keeps it from growing.
PACKAGE_BUDGET = 6_600


def test_the_default_package_stays_within_its_line_budget(rendered):
    package = package_of(rendered("default"))
    sizes = {
        path.relative_to(package).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in package.rglob("*.py")
    }
    total = sum(sizes.values())
    largest = ", ".join(
        f"{name} {lines}" for name, lines in sorted(sizes.items(), key=lambda item: -item[1])[:5]
    )
    assert total <= PACKAGE_BUDGET, (
        f"the generated package has {total} lines, over its budget of {PACKAGE_BUDGET}: "
        f"make room before adding (largest: {largest})"
    )
