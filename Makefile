# mlops-template: the template's own tasks. `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# uv from PATH if present, else a private copy installed with pip into .tools/ (git-ignored).
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
VENV_STAMP := .venv/.synced
# Extra flags for `uv sync`, e.g. UV_SYNC_FLAGS=--upgrade to test the newest allowed versions.
UV_SYNC_FLAGS ?= --locked
DEMO_DIR ?= build/demo
PYTEST_ARGS ?=
# The slow tier's workers (pytest-xdist): its renders install and run independently, and one
# worker leaves a core idle while uv downloads or Docker builds. A test file runs in one worker,
# so a module's installed project is installed once. SLOW_WORKERS=0 runs in one process.
SLOW_WORKERS ?= 2
SLOW := .venv/bin/pytest -m slow -n $(SLOW_WORKERS) --dist loadfile

export DO_NOT_TRACK := 1
export UV_COMPILE_BYTECODE := 1
# Material for MkDocs prints an end-of-life banner on every build; the docs page says why we stay.
export NO_MKDOCS_2_WARNING := 1

.PHONY: help venv test test-fast test-slow demo docs lint clean

## Show this list of targets
help:
	@awk '/^## / {doc = substr($$0, 4); next} /^[a-zA-Z_-]+:/ && doc {printf "  %-10s %s\n", substr($$1, 1, length($$1) - 1), doc} {doc = ""}' $(MAKEFILE_LIST)

$(CURDIR)/.tools/bin/uv:
	@echo "Installing uv into .tools/ with pip (about 10 s)"
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet uv

$(VENV_STAMP): pyproject.toml uv.lock | $(UV)
	@echo "Creating .venv with the template's tooling (about 30 s, then bytecode compilation)"
	$(UV) sync $(UV_SYNC_FLAGS) --quiet
	@touch $@

## Create .venv with the template's tooling (cookiecutter, cruft, pytest, ruff, mkdocs)
venv: $(VENV_STAMP)

## Run the fast tier (~30 s), then, if it passed, the slow tier that installs projects (~35 min)
test: $(VENV_STAMP)
	@echo "==> Fast tier: every render, its files, lint, hooks and docs (about 1.5 min on 2 cores)"
	.venv/bin/pytest -m "not slow" $(PYTEST_ARGS)
	@echo "==> Slow tier: each render installed and run as a new team would (about 35 min on 2 cores)"
	$(SLOW) $(PYTEST_ARGS)

## Run the fast tier only (renders, hooks, lint, docs; no installs)
test-fast: $(VENV_STAMP)
	.venv/bin/pytest -m "not slow" $(PYTEST_ARGS)

## Run the slow tier only (generated projects' own make setup and make test)
test-slow: $(VENV_STAMP)
	$(SLOW) $(PYTEST_ARGS)

## Render the default project into build/demo and run it end to end
demo: $(VENV_STAMP)
	.venv/bin/python tools/demo.py --output-dir $(DEMO_DIR)

## Build the template's documentation site into site/
docs: $(VENV_STAMP)
	.venv/bin/mkdocs build --strict

# The generated package and the milestone checker hold no Jinja: they lint as they are, but for
# the service's assembly (api/main.py, settings.py, __init__.py), which names the parts a project
# was generated with and is linted in every render by the fast tier.
PACKAGE_DIR := {{cookiecutter.project_slug}}/{{cookiecutter.module_name}}
CHECKER := {{cookiecutter.project_slug}}/course/milestones.py
ASSEMBLY := **/api/main.py,**/api/settings.py,**/api/__init__.py

## Lint the template's own Python, the generated package, and the workflows
lint: $(VENV_STAMP)
	.venv/bin/ruff check --config pyproject.toml --extend-exclude "$(ASSEMBLY)" hooks tests tools src "$(PACKAGE_DIR)" "$(CHECKER)"
	.venv/bin/ruff format --config pyproject.toml --extend-exclude "$(ASSEMBLY)" --check hooks tests tools src "$(PACKAGE_DIR)" "$(CHECKER)"
	.venv/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

## Remove build output and caches (keeps .venv)
clean:
	rm -rf build site .pytest_cache .ruff_cache
