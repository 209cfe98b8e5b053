# Every target bootstraps what it needs: a python3.13 virtual environment with the pinned
# development requirements (the layer's package installed editable), and (for the local stack) the
# mariadb and haproxy packages (and chromium and nodejs for the console's browser and page tests).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# A python3.13 that runs (a pyenv shim may exist without the version selected), else pyenv's own copy.
PYTHON313 ?= $(shell python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null || ls -d $$HOME/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null | sort -V | tail -1)
VENV := .venv
BIN := $(abspath $(VENV))/bin
# The shared Lambda layer (template.yaml's ContentUri): a package of its own, a member of the uv workspace.
LAYER := layers/shared
# sam build looks for python3.13 on PATH; the venv's bin has it.
export PATH := $(BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0

.PHONY: help venv lock packages lint lock-check test-console-js test-fast test build deploy demo drill bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# requirements-dev.txt (exported from uv.lock) pins every package and installs both layers with `-e`.
$(VENV)/.installed: requirements-dev.txt
	@test -n "$(PYTHON313)" || { echo "python3.13 not found: install Python 3.13 (the Lambda runtime) and put it on PATH" >&2; exit 1; }
	@echo "==> creating $(VENV) with $(PYTHON313)"
	$(PYTHON313) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed ## create the virtual environment (python3.13 + dev requirements)

# checkov pins an old boto3 that cannot share the dev environment with the layer's: it has a project
# of its own (tools/checkov, its own uv.lock) and an environment of its own inside .venv.
CHECKOV_PROJECT := tools/checkov
CHECKOV_ENV := $(abspath $(VENV))/checkov
$(CHECKOV_ENV)/.installed: $(CHECKOV_PROJECT)/uv.lock $(VENV)/.installed
	UV_PROJECT_ENVIRONMENT=$(CHECKOV_ENV) $(BIN)/uv sync --quiet --frozen --project $(CHECKOV_PROJECT) --python $(PYTHON313)
	@touch $@

# uv.lock holds every Python dependency; the two requirements files are exports of it, for pip and for
# sam build (the layer's with hashes, so a build installs exactly the locked wheels).
LAYER_EXPORT := --package customer-ingest-layer --no-dev --no-emit-workspace
DEV_EXPORT := --all-groups --no-hashes
# $(call export,FILE,ARGS): FILE = `uv export ARGS`, under a header that says where it comes from.
define export
{ echo '# Generated from uv.lock by `make lock` (uv export --frozen $(2)): do not edit by hand.'; \
  $(BIN)/uv export --quiet --frozen --no-header $(2); } > $(1)
endef

lock: venv ## resolve uv.lock (LOCK_ARGS=--upgrade-package=NAME to move one), export the requirements files
	$(BIN)/uv lock $(LOCK_ARGS)
	$(BIN)/uv lock --project $(CHECKOV_PROJECT) --python $(PYTHON313) $(LOCK_ARGS)
	$(call export,$(LAYER)/requirements.txt,$(LAYER_EXPORT))
	$(call export,requirements-dev.txt,$(DEV_EXPORT))

lock-check: venv ## uv.lock matches the pyproject files, and the requirements files match uv.lock
	@echo "==> uv.lock and the requirements files"
	$(BIN)/uv lock --check --quiet
	$(BIN)/uv lock --check --quiet --project $(CHECKOV_PROJECT) --python $(PYTHON313)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(call export,$$tmp/layer.txt,$(LAYER_EXPORT)) && $(call export,$$tmp/dev.txt,$(DEV_EXPORT)) && \
	diff -u $(LAYER)/requirements.txt $$tmp/layer.txt && diff -u requirements-dev.txt $$tmp/dev.txt \
	|| { echo "requirements files differ from uv.lock: run make lock" >&2; exit 1; }

packages: ## install mariadb-server-core, haproxy, chromium and nodejs when missing (needs root or sudo)
	@sh local/ensure-packages.sh

lint: venv lock-check $(CHECKOV_ENV)/.installed ## lock files in sync, cfn-lint (+ serverless rules), checkov, sam validate --lint, ruff, mypy
	@# Zero findings: each accepted one is skipped in template.yaml's Metadata, next to its reason.
	@echo "==> cfn-lint with the serverless rules"
	$(BIN)/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	@echo "==> checkov"
	$(CHECKOV_ENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download
	@echo "==> sam validate --lint"
	$(BIN)/sam validate --lint --template template.yaml
	@echo "==> ruff"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@echo "==> mypy"
	$(BIN)/mypy

# The console page's run state and verdict as pure functions (functions/console/static/*.js, ES
# modules), under Node's built-in test runner: no npm, no browser.
test-console-js: ## the console page's run state and verdict under node --test: seconds
	@command -v node >/dev/null || { echo "node not found: run make packages (Debian's nodejs)" >&2; exit 1; }
	@echo "==> node --test tests/console"
	node --test tests/console/*.test.mjs

test-fast: venv lint test-console-js ## lint, then the unit tests (no servers): under a minute
	@echo "==> pytest tests/unit"
	$(BIN)/pytest tests/unit

test: venv packages lint test-console-js ## lint, then every test (unit, console page, integration, SQS emulator, end-to-end)
	@echo "==> pytest"
	$(BIN)/pytest

build: venv ## sam build (arm64 wheels for the layer, from PyPI), then precompile it
	$(BIN)/sam build
	@# Lambda's code directories are read-only: without shipped bytecode every cold start compiles
	@# Powertools, pydantic and botocore from source (docs/benchmarks.md measures the difference).
	$(BIN)/python -m compileall -q --invalidation-mode unchecked-hash .aws-sam/build

deploy: build ## sam deploy --guided (needs AWS credentials)
	$(BIN)/sam deploy --guided

demo: venv packages ## run the whole pipeline on this machine until Ctrl-C
	$(BIN)/python -m local.demo

drill: venv packages ## failure drills under traffic; writes reports/drill.{json,md,png}
	$(BIN)/python -m local.drill $(DRILL_ARGS)

bench: venv packages ## benchmarks; writes reports/bench.json
	$(BIN)/python -m bench $(BENCH_ARGS)

clean: ## remove build output and caches (keeps the virtual environment)
	rm -rf .aws-sam .pytest_cache .ruff_cache .mypy_cache .hypothesis
