"""A team's recorded answers, checked before any render: they come from an untrusted file.

Cookiecutter renders every answer it is given as a Jinja template, in an environment that can
run Python: an answer of `{{ cycler.__init__.__globals__.os.system(...) }}` would run a command
on the instructor's machine. So the answers reach cookiecutter only after `checked_answers`:

- only the template's public options are kept (an unknown key is dropped);
- a choice must be one of its values, a switch true or false, a text a string of at most
  TEXT_LIMIT printable characters with no template syntax (`{{`, `{%`, `{#` and their ends);
- then the template's own rules (`problems` of its `hooks/answers.py`, the rules its hooks apply)
  must hold.

A broken rule is a ToolError naming the answer: that team's row says so, and nothing renders.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from mlops_template.errors import ToolError

TEXT_LIMIT = 500
TEMPLATE_SYNTAX = re.compile(r"\{[{%#]|[}%#]\}")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def options(template: Path) -> dict:
    """The public options of the template's cookiecutter.json, with their defaults."""
    try:
        context = json.loads((template / "cookiecutter.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ToolError(f"the template's cookiecutter.json cannot be read: {error}") from None
    return {key: value for key, value in context.items() if not key.startswith("_")}


def checked_answers(recorded: dict, template: Path) -> dict:
    """The answers to render the reference with (see the module's text)."""
    answers, every = {}, {}
    for name, default in options(template).items():
        if name not in recorded:
            if not isinstance(default, (list, bool)):
                raise ToolError(f"answer {name} is missing from .cruft.json")
            every[name] = default[0] if isinstance(default, list) else default
            continue  # cookiecutter takes the template's default
        value = recorded[name]
        if isinstance(default, list):
            if not isinstance(value, str) or value not in [str(choice) for choice in default]:
                raise ToolError(f"answer {name}: {shown(value)} is not one of its choices")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ToolError(f"answer {name}: {shown(value)} is not true or false")
        elif not isinstance(value, str) or len(value) > TEXT_LIMIT:
            raise ToolError(f"answer {name}: not a text of at most {TEXT_LIMIT} characters")
        elif TEMPLATE_SYNTAX.search(value):
            raise ToolError(
                f"answer {name} holds template syntax ({shown(value)}): refused, never rendered"
            )
        elif CONTROL.search(value):
            raise ToolError(f"answer {name} holds control characters: refused")
        answers[name] = every[name] = value
    broken = template_rules(template)(every)
    if broken:
        raise ToolError(f"answers break the template's rules: {'; '.join(broken)}")
    return answers


def template_rules(template: Path):
    """`problems(answers)` of the template's hooks/answers.py (the instructor's template, not
    the team's), or a function finding none for a template without it."""
    rules = template / "hooks" / "answers.py"
    if not rules.is_file():
        return lambda answers: []
    name = f"mlops_template_rules_{abs(hash(str(rules)))}"
    spec = importlib.util.spec_from_file_location(name, rules)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return getattr(module, "problems", lambda answers: [])


def shown(value: object) -> str:
    """A value for a one-line message: its repr, cut short, without control characters."""
    text = CONTROL.sub("?", repr(value))
    return text if len(text) <= 60 else f"{text[:57]}..."
