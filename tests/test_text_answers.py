"""Fast tier: a free-text answer lands in every file as exactly what was typed, whatever it holds.

`project_name`, `description` (derived from the name) and `author_name` go into TOML
(pyproject.toml), YAML (mkdocs.yml, the dataset card's front matter), a Python docstring (the
package's `__init__.py`), Markdown (README, docs, cards), HTML (the DVC plots page), the licence
and JSON (.cruft.json). Each file escapes them for its kind with the filters of hooks/answers.py.
The renders below use the answers that once broke a project (invalid TOML, a SyntaxError, broken
YAML front matter) and the `odd-text` set of the shared matrix (quotes, a colon, an emoji and a
backslash at once), which the rest of the fast tier checks like any render and the slow tier
installs. Every structured file must parse, and each answer must read back unchanged.
"""

from __future__ import annotations

import ast
import html
import importlib.util
import json
import re
import sys
import tomllib
from pathlib import Path

import markdown
import pytest
import yaml
from markdown_it import MarkdownIt

from conftest import ALL_SETS, OPTION_SETS, TEMPLATE_DIR, parses, render, run, text_files

BIN = Path(sys.executable).parent
# Answers that rendered with exit 0 into broken projects before they were escaped.
ONCE_BROKEN = {
    "emoji": "Rocket \N{ROCKET} Lab",  # pyproject.toml: a surrogate-pair escape, invalid TOML
    "quotes-backslash": 'Team """ Alpha \\ end',  # __init__.py: a SyntaxError
    "colon": "Team: Alpha",  # the dataset card's front matter: not YAML any more
}
CASES = [*ONCE_BROKEN, "odd-text"]
# Text that means something to Markdown, for the filter on its own.
MARKDOWN_TRAPS = [
    "*Emphasis* and __strong__ and `code`",
    "[a link](https://example.org) and ![an image](x.png)",
    "<script>alert(1)</script> & &amp; &#35; R&D",
    "# not a heading #",
    "1. not a list",
    "2) nor this",
    "- nor this",
    "+ nor this",
    "> not a quote",
    "Back\\slash \\* and trailing \\",
    "Braces {#id .class} and | pipes |",
    "Diagnòstic l·l O\N{RIGHT SINGLE QUOTATION MARK}Brien \N{EN DASH} \N{ROCKET}",
]


def load_answers_module():
    spec = importlib.util.spec_from_file_location("answers", TEMPLATE_DIR / "hooks" / "answers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


answers_module = load_answers_module()


@pytest.fixture(scope="module")
def project(rendered, tmp_path_factory):
    """`project(case)`: the render of a case, with the text it was given; each rendered once."""
    cache: dict[str, tuple[Path, str]] = {}

    def get(case: str) -> tuple[Path, str]:
        if case not in cache:
            if case == "odd-text":
                cache[case] = rendered(case), ALL_SETS[case]["project_name"]
            else:
                text = ONCE_BROKEN[case]
                answers = {**OPTION_SETS["default"], "project_name": text, "author_name": text}
                cache[case] = render(tmp_path_factory.mktemp(case), answers), text
        return cache[case]

    return get


def front_matter(path: Path) -> dict:
    _, head, _ = path.read_text(encoding="utf-8").split("---\n", 2)
    return yaml.safe_load(head)


def headings(markdown_text: str) -> dict[str, list[str]]:
    """The first-level headings' text as each renderer shows it: Python-Markdown (MkDocs) and
    CommonMark (GitHub's base), unescaped but with any markup left in."""
    pages = {
        "python-markdown": markdown.markdown(markdown_text),
        "commonmark": MarkdownIt("commonmark").render(markdown_text),
    }
    return {
        name: [html.unescape(h) for h in re.findall(r"<h1>(.*?)</h1>", page, re.S)]
        for name, page in pages.items()
    }


def paragraphs(markdown_text: str) -> list[str]:
    page = MarkdownIt("commonmark").render(markdown_text)
    return [html.unescape(p) for p in re.findall(r"<p>(.*?)</p>", page, re.S)]


@pytest.mark.parametrize("case", CASES)
def test_every_structured_file_parses_and_python_compiles(project, case):
    folder, _text = project(case)
    kinds = set()
    for path, text in text_files(folder):
        if path.suffix == ".py":
            compile(text, str(path), "exec")
        elif path.suffix == ".md" and text.startswith("---\n"):
            front_matter(path)
        elif not parses(path, text):
            continue
        kinds.add(path.suffix)
    assert {".yml", ".yaml", ".toml", ".json", ".py", ".md"} <= kinds
    package = folder.name.replace("-", "_")
    for command in (["check"], ["format", "--check"]):
        run([str(BIN / "ruff"), *command, "--no-cache", f"{package}/__init__.py"], cwd=folder)


@pytest.mark.parametrize("case", CASES)
def test_each_answer_reads_back_as_typed(project, case):
    folder, text = project(case)
    description = f"{text}: a course team's machine-learning project, from versioned data to a "
    description += "monitored prediction service."
    pyproject = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert pyproject["description"] == description
    assert pyproject["authors"] == [{"name": text, "email": "team@example.edu"}]
    site = yaml.safe_load((folder / "mkdocs.yml").read_text(encoding="utf-8"))
    assert (site["site_name"], site["site_description"]) == (text, description)
    assert front_matter(folder / "docs" / "dataset-card.md")["pretty_name"] == f"{text} data"
    package = folder / folder.name.replace("-", "_") / "__init__.py"
    docstring = ast.get_docstring(ast.parse(package.read_text(encoding="utf-8")), clean=False)
    title, body = docstring.split("\n\n", 1)
    assert title == f"{text}." and " ".join(body.split()) == description
    assert max(map(len, package.read_text(encoding="utf-8").splitlines())) <= 100
    [holder] = re.findall(r"^Copyright \(c\) \d{4} (.*)$", (folder / "LICENSE").read_text(), re.M)
    assert holder == text
    recorded = json.loads((folder / ".cruft.json").read_text(encoding="utf-8"))
    assert recorded["context"]["cookiecutter"]["author_name"] == text
    plots = (folder / "reports" / "dvc_plots_template.html").read_text(encoding="utf-8")
    [title] = re.findall(r"<title>(.*?)</title>", plots)
    assert html.unescape(title) == f"{text}: DVC plots"


@pytest.mark.parametrize("case", CASES)
def test_markdown_shows_the_answers_as_typed(project, case):
    folder, text = project(case)
    docs = folder / "docs"
    expected = {
        folder / "README.md": text,
        docs / "index.md": text,
        docs / "model-card.md": f"Model Card for {text}",
        docs / "dataset-card.md": f"Dataset Card for {text} data",
    }
    for path, heading in expected.items():
        page = path.read_text(encoding="utf-8")
        if page.startswith("---\n"):
            page = page.split("---\n", 2)[2]
        for renderer, found in headings(page).items():
            assert found[:1] == [heading], f"{path.name} under {renderer}: {found[:1]}"
    readme = paragraphs((folder / "README.md").read_text(encoding="utf-8"))
    assert readme[0].startswith(f"{text}: a course team")
    assert f'by {text} <a href="mailto:team@example.edu">' in readme[1]


@pytest.mark.parametrize("trap", MARKDOWN_TRAPS)
def test_markdown_filter_keeps_any_text_literal(trap):
    """As a heading and as a paragraph, under both renderers, the text reads as typed."""
    escaped = answers_module.markdown_text(trap)
    for renderer, found in headings(f"# {escaped}\n").items():
        assert found == [trap], renderer
    assert paragraphs(f"{escaped}\n") == [trap]
    assert paragraphs(f"Said by {escaped}.\n") == [f"Said by {trap}."]


def test_ordinary_text_is_written_unchanged():
    """The filters leave plain names alone: the files stay as readable as before."""
    plain = "Breast Cancer Diagnosis: a course team's machine-learning project, v2 (2026)."
    assert answers_module.markdown_text(plain) == plain
    assert answers_module.docstring_text(plain) == plain
    assert answers_module.quoted(plain) == f'"{plain}"'
