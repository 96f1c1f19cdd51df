"""Render the template's default project and run it end to end, as a new team would.

Used by `make demo`. Steps: render with every default answer into a scratch folder (replacing an
earlier demo), then the project's own `make setup`, `make pipeline` when the project has one, and
`make test`. Prints where the project and its results are.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE_DIR = Path(__file__).resolve().parents[1]


def make_targets(project: Path) -> set[str]:
    """Targets the project's Makefile defines (so the demo runs only steps that exist)."""
    text = (project / "Makefile").read_text(encoding="utf-8")
    return {line.split(":")[0] for line in text.splitlines() if line[:1].isalpha() and ":" in line}


def step(title: str, command: list[str], cwd: Path, env: dict[str, str]) -> None:
    print(f"\n==> {title}: {' '.join(command)}", flush=True)
    subprocess.run(command, cwd=cwd, env=env, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=TEMPLATE_DIR / "build" / "demo")
    args = parser.parse_args(argv)
    output_dir = args.output_dir.resolve()
    if output_dir.exists():
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True)

    print(f"==> Rendering the default project into {output_dir}", flush=True)
    project = Path(cookiecutter(str(TEMPLATE_DIR), no_input=True, output_dir=str(output_dir)))

    env = dict(os.environ)
    # Reuse the template's uv (it sits next to this interpreter) instead of bootstrapping one.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    targets = make_targets(project)
    try:
        step("Installing", ["make", "setup"], project, env)
        if "pipeline" in targets:
            step("Running the pipeline", ["make", "pipeline"], project, env)
        step("Testing", ["make", "test"], project, env)
    except subprocess.CalledProcessError as error:
        print(f"\nDemo failed at `{' '.join(error.cmd)}` in {project}", file=sys.stderr)
        return 1

    print(f"\nDemo passed. The project is in {project}")
    for name in ("reports", "models", "mlflow.db"):
        if (project / name).exists():
            print(f"  {name}: {project / name}")
    print(f"  try: cd {project} && make help")
    return 0


if __name__ == "__main__":
    sys.exit(main())
