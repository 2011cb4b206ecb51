# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV := python3 -m uv
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test check bench install system-deps

install:
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --frozen --quiet

system-deps:
	@bash .ci/system-deps

run: install
	@$(UV) run flask --app wsgi db upgrade
	@$(UV) run python -m webapp.dev.server --host $(HOST) --port $(PORT)

# Lint, formatting and types: what CI runs before the tests (and pre-commit before a commit).
check: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy broker webapp/services

test: install system-deps
	$(UV) run pytest $(PYTEST_ARGS)

bench: install system-deps
	$(UV) run python -m tests.perf

