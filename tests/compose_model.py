"""A generated compose.yaml as `docker compose config` shows it, computed in Python.

The fast tier needs no Docker: this module reads a project's compose.yaml the way Compose does
for the parts the templates use, and checks it the way Compose does before it runs anything:

1. interpolation of `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `$$`, from
   the environment first and the project's `.env` second;
2. validation against the Compose Specification's JSON schema, as vendored by check-jsonschema
   (a dev dependency already: docs/contributing.md says why this copy);
3. what the schema cannot say: a `depends_on` on a service that is not there (or not in the
   active profiles), a named volume not declared under `volumes:`, a required env_file missing;
4. normalisation to Compose's long forms: services of inactive profiles dropped; ports, volumes,
   `depends_on`, `environment` (with the service's env_files merged in) and `build` as
   `docker compose config --format json` writes them, paths made absolute.

The slow tier (tests/test_delivery_files.py) checks that this model and Docker's agree on every
render. Durations, networks and other fields no template sets are left as they are written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from jsonschema import Draft202012Validator

SCHEMA_NAME = "vendor.compose-spec"
VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?+])(?P<argument>[^}]*))?\})"
)


class ComposeError(ValueError):
    """compose.yaml would be refused by Compose; the message says where and why."""


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a dotenv file (comments, blank lines and quotes as Compose reads them)."""
    values = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.removeprefix("export ").partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key.strip()):
            raise ComposeError(f"{path.name}:{number}: not a KEY=VALUE line: {line!r}")
        value = value.strip()
        if value[:1] in {'"', "'"} and value.endswith(value[0]) and len(value) > 1:
            value = value[1:-1]
        elif " #" in value:  # an inline comment after an unquoted value
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def interpolate(value, variables: dict[str, str], where: str = ""):
    """Every string of `value` (a YAML document) with its variables replaced, as Compose does."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables, f"{where}[{i}]") for i, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["bare"] or match["name"]
        operator, argument = match["operator"] or "", match["argument"] or ""
        present = name in variables and (variables[name] != "" or not operator.startswith(":"))
        if operator.endswith("-"):
            return variables[name] if present else interpolate(argument, variables, where)
        if operator.endswith("?") and not present:
            place = where.lstrip(".")
            raise ComposeError(f"{place}: required variable {name} is missing: {argument}")
        if operator.endswith("+"):
            return interpolate(argument, variables, where) if present else ""
        return variables.get(name, "")

    return VARIABLE.sub(replace, value)


def schema_errors(document: dict) -> list[str]:
    """Where and why the document breaks the Compose Specification's schema, one line each."""
    validator = Draft202012Validator(get_builtin_schema(SCHEMA_NAME))
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.absolute_path))
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]


def load(folder: Path, environment: dict[str, str], profiles: str = "") -> dict:
    """`docker compose config --format json` of folder/compose.yaml, in the environment given
    (COMPOSE_PROFILES there, or `profiles`, names the active profiles)."""
    raw = yaml.safe_load((folder / "compose.yaml").read_text(encoding="utf-8"))
    dotenv = folder / ".env"
    variables = {**(read_dotenv(dotenv) if dotenv.is_file() else {}), **environment}
    document = interpolate(raw, variables)
    if problems := schema_errors(document):
        raise ComposeError("compose.yaml breaks the Compose Specification:\n" + "\n".join(problems))
    active = set(filter(None, (profiles or variables.get("COMPOSE_PROFILES", "")).split(",")))
    services = {
        name: service
        for name, service in document["services"].items()
        if not service.get("profiles") or active & set(service["profiles"])
    }
    declared = set(document.get("volumes") or {})
    model = {"name": document.get("name"), "services": {}}
    for name, service in services.items():
        model["services"][name] = normalised(name, service, folder, variables, services, declared)
    # Like Compose, only the named volumes that an active service mounts.
    mounted = [v for s in model["services"].values() for v in s["volumes"] if v["type"] == "volume"]
    model["volumes"] = sorted({volume["source"] for volume in mounted})
    return model


def normalised(name, service, folder, variables, services, declared) -> dict:
    """One service in Compose's long forms, checked against the other services and volumes."""
    result = dict(service)
    if "build" in service:
        build = service["build"] if isinstance(service["build"], dict) else {}
        context = service["build"] if isinstance(service["build"], str) else build.get("context")
        args = build.get("args") or {}
        if isinstance(args, list):
            args = dict(arg.split("=", 1) if "=" in arg else (arg, None) for arg in args)
        args = {k: v if v is not None else variables.get(k) for k, v in args.items()}
        result["build"] = {
            **build,
            "context": str((folder / (context or ".")).resolve()),
            "dockerfile": build.get("dockerfile", "Dockerfile"),
            "args": {k: str(v) for k, v in args.items() if v is not None},
        }
    environment = {}
    for entry in service.get("env_file") or []:
        entry = {"path": entry} if isinstance(entry, str) else entry
        path = folder / entry["path"]
        if path.is_file():
            environment |= read_dotenv(path)
        elif entry.get("required", True):
            raise ComposeError(f"services.{name}.env_file: {entry['path']} is missing")
    written = service.get("environment") or {}
    if isinstance(written, list):
        written = dict(item.split("=", 1) if "=" in item else (item, None) for item in written)
    for key, value in written.items():
        if value is None:  # `KEY:` alone takes the value from the environment, if any
            value = variables.get(key)
        if value is not None:
            environment[key] = str(value).lower() if isinstance(value, bool) else str(value)
    if environment or "environment" in service or "env_file" in service:
        result["environment"] = environment
    result.pop("env_file", None)
    result["ports"] = [port_entry(port) for port in service.get("ports") or []]
    volumes = service.get("volumes") or []
    result["volumes"] = [volume_entry(volume, folder, name, declared) for volume in volumes]
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        depends = {other: {"condition": "service_started"} for other in depends}
    for other, settings in depends.items():
        if other not in services:
            raise ComposeError(f"services.{name}.depends_on: {other} is not an active service")
        depends[other] = {"condition": "service_started", "required": True, **settings}
    if depends:
        result["depends_on"] = depends
    return result


def port_entry(port) -> dict:
    """A short port ("127.0.0.1:8000:8000", "8000") in Compose's long form."""
    if isinstance(port, dict):
        return {"mode": "ingress", "protocol": "tcp", **port}
    text, _, protocol = str(port).partition("/")
    parts = text.rsplit(":", 2)
    host_ip = parts[0] if len(parts) == 3 else None
    published = parts[-2] if len(parts) >= 2 else None
    entry = {"mode": "ingress", "target": int(parts[-1]), "protocol": protocol or "tcp"}
    if host_ip:
        entry["host_ip"] = host_ip
    if published:
        entry["published"] = published
    return entry


def volume_entry(volume, folder: Path, service: str, declared: set[str]) -> dict:
    """A short volume ("name:/path", "./dir:/path:ro") in Compose's long form; a named volume
    must be declared under the top-level `volumes:`."""
    if isinstance(volume, dict):
        entry = dict(volume)
    else:
        source, _, rest = str(volume).partition(":")
        target, _, mode = rest.partition(":")
        bind = source.startswith((".", "/", "~"))
        entry = {"type": "bind" if bind else "volume", "source": source, "target": target}
        if "ro" in mode.split(","):
            entry["read_only"] = True
    if entry["type"] == "bind":
        entry["source"] = str((folder / os.path.expanduser(entry["source"])).resolve())
    elif entry["type"] == "volume" and entry.get("source") not in declared:
        raise ComposeError(
            f"services.{service}.volumes: volume {entry.get('source')!r} is not declared under "
            "the top-level volumes:"
        )
    return entry
