"""The documentation: the site builds strictly and offline, and every options table is current."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MKDOCS = Path(sys.executable).parent / "mkdocs"


def _load_tool(name: str):
    """Import a module from tools/ by path: tools/ is not a package on sys.path."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up while the class is created
    spec.loader.exec_module(module)
    return module


options_reference = _load_tool("options_reference")


def public_options() -> list[str]:
    data = json.loads((REPO_ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
    return [name for name in data if not name.startswith("_")]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(site_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return site_dir


def test_options_page_names_every_option(site: Path):
    html = (site / "options" / "index.html").read_text(encoding="utf-8")
    assert "options-table" not in html, "the hook left the marker line in the page"
    missing = [name for name in public_options() if f"<code>{name}</code>" not in html]
    assert not missing, f"options page lacks {missing}"


def test_readme_options_block_is_current():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert options_reference.readme_block(readme) == options_reference.options_table(), (
        "README options table is stale: run "
        "`.venv/bin/python tools/options_reference.py --write-readme README.md`"
    )


def test_check_readme_flags_a_stale_block(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- options:start -->\n| old |\n<!-- options:end -->\n")
    assert options_reference.main(["--check-readme", str(readme)]) == 1
    assert "differs" in capsys.readouterr().err
    assert options_reference.main(["--write-readme", str(readme)]) == 0
    assert options_reference.main(["--check-readme", str(readme)]) == 0
    assert readme.read_text().startswith("# x\n\n<!-- options:start -->\n| variable |")


def test_option_without_help_is_a_clear_error(tmp_path: Path):
    config = {
        "project_name": "Demo",
        "use_api": True,
        "__prompts__": {"project_name": "Project name", "use_api": "Include the API?"},
        "_help": {"project_name": "Human-readable name."},
    }
    path = tmp_path / "cookiecutter.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(options_reference.OptionsError, match=r"'use_api' has no one-line help"):
        options_reference.options_table(path)


def test_choice_option_without_prompt_is_a_clear_error(tmp_path: Path):
    config = {
        "dvc_remote": ["local", "s3"],
        "__prompts__": {"dvc_remote": {"local": "A local folder"}},
        "_help": {"dvc_remote": "Default DVC remote."},
    }
    path = tmp_path / "cookiecutter.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(options_reference.OptionsError, match=r"'dvc_remote' has no prompt"):
        options_reference.options_table(path)
