"""The rules the answers must follow, and the filters that write text answers into files.

Cookiecutter loads this module as a Jinja extension (`_extensions` in cookiecutter.json). Its
`checked` filter runs when cookiecutter computes the private `__checked` key, right after the last
question and before any folder exists. A broken rule stops the render with one `ERROR:` line per
rule and nothing else: cookiecutter's command line prints this exception's message and exits 1,
where a failing pre-generation hook would add cookiecutter's own traceback.

The free-text answers (`project_name`, `description`, `author_name`) may hold any one line of
text: quotes, colons, backslashes, emoji. The templates never paste them raw into a file with a
syntax; they pass through the filter of that file's kind (`quoted` for TOML and YAML strings,
`docstring_text`, `markdown_text`; Jinja's own `e` for HTML), so no answer can break a render.
Only what no file can hold (a control character, a line break) is refused.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import unicodedata

from cookiecutter.exceptions import FailedHookException
from jinja2 import Environment
from jinja2.ext import Extension

SLUG_RULE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
SLUG_MAX_LENGTH = 64
# The dot-atom form of RFC 5322, the one packaging metadata and git accept without quoting.
EMAIL_RULE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
# Answers written as text into several kinds of file; each use escapes them for its kind.
TEXT_VARIABLES = ("project_name", "description", "author_name")
# Control characters, line and paragraph separators, surrogates: no one-line text field holds
# them, and TOML strings refuse most of them even escaped.
UNPRINTABLE_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}
# Characters Markdown reads as syntax anywhere in a line, escaped with a backslash (CommonMark
# and Python-Markdown, which MkDocs uses, both accept these escapes).
MARKDOWN_INLINE = re.compile(r"([\\`*_{}\[\]#>])")
# At the start of a line: a list item (`- `, `+ `, `1. `, `1) `).
MARKDOWN_LINE_START = re.compile(r"^([-+])|^(\d+)([.)])")
# Import names the generated project itself depends on: a package called like one of them would
# shadow it and break the project in confusing ways.
STACK_MODULES = {
    "cookiecutter",
    "dvc",
    "mlflow",
    "fastapi",
    "great_expectations",
    "codecarbon",
    "evidently",
    "prometheus_client",
    "pytest",
    "sklearn",
    "pandas",
    "numpy",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "pydantic",
    "pydantic_settings",
    "uvicorn",
    "typer",
    "redis",
    "yaml",
}
# Folders of the generated project: a package with one of these names would land inside it
# (data/ and models/ are git-ignored, so the package would never be committed).
LAYOUT_FOLDERS = {
    "benchmarks",
    "build",
    "data",
    "deploy",
    "dist",
    "docs",
    "expectations",
    "loadtests",
    "models",
    "notebooks",
    "references",
    "reports",
    "site",
    "tests",
}
REQUIREMENTS = {
    "use_redis_cache": "use_api",
    "use_explain_api": "use_api",
    "use_docker": "use_api",  # the image is the prediction service
    "use_kubernetes": "use_docker",
    "use_monitoring": "use_api",  # it watches the prediction service
}
BOOLEAN_VARIABLES = (
    "use_api",
    "use_redis_cache",
    "use_explain_api",
    "use_docker",
    "use_kubernetes",
    "use_monitoring",
    "use_github_actions",
    "use_docs_site",
)


class AnswersRejected(FailedHookException):
    """Answers that break a rule; the message holds one `ERROR:` line per broken rule."""


def problems(answers: dict) -> list[str]:
    """Return one line per broken rule, each naming the variable and the rule."""
    found = []
    slug = str(answers.get("project_slug", "")).strip()
    module = str(answers.get("module_name", "")).strip()
    if not slug:
        found.append("project_slug: must not be empty")
    elif not SLUG_RULE.match(slug) or len(slug) > SLUG_MAX_LENGTH:
        found.append(
            f"project_slug: {slug!r} is not a good folder name; use lowercase letters, digits and "
            f"single hyphens, start with a letter, at most {SLUG_MAX_LENGTH} characters "
            "(for example 'breast-cancer-diagnosis')"
        )
    if not module:
        found.append("module_name: must not be empty")
    elif not module.isidentifier() or not module.isascii():
        found.append(f"module_name: {module!r} is not a valid Python identifier")
    elif keyword.iskeyword(module) or keyword.issoftkeyword(module):
        found.append(f"module_name: {module!r} is a Python keyword")
    elif module != module.lower():
        found.append(f"module_name: {module!r} must be lowercase (PEP 8 package names)")
    elif module in LAYOUT_FOLDERS:
        found.append(
            f"module_name: {module!r} is a folder of the project layout ({module}/); "
            "pick a name specific to the project, e.g. '<topic>_model'"
        )
    elif module in sys.stdlib_module_names or module in STACK_MODULES:
        found.append(
            f"module_name: {module!r} would shadow the standard library or a dependency; "
            "pick a name specific to the project"
        )
    if not EMAIL_RULE.match(str(answers.get("author_email", ""))):
        found.append(f"author_email: {answers.get('author_email')!r} is not an email address")
    for name in TEXT_VARIABLES:
        text = str(answers.get(name, ""))
        if not text.strip():
            found.append(f"{name}: must not be empty")
        elif bad := next((c for c in text if unprintable(c)), None):
            found.append(f"{name}: one line of text, without control characters (found {bad!r})")
    for name in BOOLEAN_VARIABLES:
        if not isinstance(answers.get(name), bool):
            found.append(f"{name}: must be true or false, got {answers.get(name)!r}")
    for option, needed in REQUIREMENTS.items():
        if answers.get(option) is True and answers.get(needed) is False:
            found.append(f"{option}: needs {needed} to be true")
    return found


def checked(answers: dict) -> str:
    """Raise AnswersRejected listing every broken rule; render as nothing when all hold."""
    found = problems(dict(answers))
    if found:
        raise AnswersRejected("\n".join(f"ERROR: {line}" for line in found))
    return ""


def unprintable(character: str) -> bool:
    return unicodedata.category(character) in UNPRINTABLE_CATEGORIES


def quoted(text: str) -> str:
    """`text` as a double-quoted string, quotes included, that TOML, YAML and JSON all read back
    as exactly `text`: a colon, `#`, quote or backslash cannot change the document around it.

    Without control characters (refused above) the only escapes needed are `\\` and `\"` in all
    three, and JSON writes exactly those. `ensure_ascii=False` keeps emoji as they are: the
    `\\ud83d\\ude80` surrogate escapes Jinja's `tojson` writes are invalid TOML."""
    return json.dumps(str(text), ensure_ascii=False)


def docstring_text(text: str, width: int | None = None) -> str:
    """`text` for the inside of a triple-quoted Python string, reading back as exactly `text`
    (with `width`, its words wrapped into lines of at most that many characters, escapes
    included: the project's ruff checks the length of each line as written).

    Backslashes and quotes are escaped, so neither `\"\"\"` nor a trailing backslash ends the
    string early. Non-ASCII punctuation, symbols and spaces are written as `\\N{NAME}` escapes:
    ruff's RUF002 flags many of them (a curly quote, an en dash, a multiplication sign) as
    look-alikes of ASCII, which would fail the project's `make lint`. Letters of any script stay
    as typed."""

    def escaped(word: str) -> str:
        word = word.replace("\\", "\\\\").replace('"', '\\"')
        return "".join(
            f"\\N{{{unicodedata.name(c)}}}"
            if not c.isascii() and unicodedata.category(c)[0] in "PSZ" and unicodedata.name(c, "")
            else c
            for c in word
        )

    words = [escaped(word) for word in str(text).split(" ")]
    if width is None:
        return " ".join(words)
    lines = [words[0]]
    for word in words[1:]:
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}"
    return "\n".join(lines)


def markdown_text(text: str) -> str:
    """`text` as Markdown that renders as exactly that text: emphasis, code, links, headings,
    HTML tags, entities and list markers escaped; ordinary words unchanged."""
    escaped = str(text).replace("&", "&amp;") if re.search(r"&#?\w+;", str(text)) else str(text)
    escaped = MARKDOWN_INLINE.sub(r"\\\1", escaped.replace("<", "&lt;"))
    return MARKDOWN_LINE_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", escaped)


class AnswerRulesExtension(Extension):
    """Adds the `checked` filter and the escaping filters of the text answers."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters.update(
            checked=checked,
            quoted=quoted,
            docstring_text=docstring_text,
            markdown_text=markdown_text,
        )
