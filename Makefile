# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint typecheck clean bench bench-postgres bench-scale bench-compare translations lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Re-install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/idp dev

lint: $(VENV)/.installed
	$(BIN)/ruff check idp tests $(wildcard bench)

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# With PYTHONDONTWRITEBYTECODE set (as on the shared test machine) no bytecode is cached: each
# xdist worker re-compiled and assertion-rewrote every test module it collects (collection 9.6 s
# of CPU instead of 4.0 s), and each of the suite's IdP processes (servers, clusters, CLI)
# compiled the package again (~0.14 s each). The caches go to the ignored __pycache__ folders.
test: $(VENV)/.installed lint typecheck
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest

# Not part of `make test`: figures depend on the machine. Results go to bench/README.md.
bench: $(VENV)/.installed
	$(BIN)/python bench/run.py --write-readme

bench-postgres: $(VENV)/.installed
	$(BIN)/python bench/run.py --postgres --write-readme

# Seeds PostgreSQL with 1k and 1M accounts (minutes) and times admin pages, report and protocol.
bench-scale: $(VENV)/.installed
	$(BIN)/python bench/scale.py --write-readme

# The IdP (PostgreSQL + Redis) beside the reference oidc-provider (../shared/peers), with wrk.
bench-compare: $(VENV)/.installed
	$(BIN)/python bench/compare.py --write-readme

clean:
	rm -rf $(VENV) .pytest_cache

# After changing user-visible text: refresh the catalog, translate the new entries in
# translations/zh/LC_MESSAGES/messages.po, run this again, and commit the .po and the .mo.
translations: $(VENV)/.installed
	$(BIN)/pybabel -q extract -F translations/babel.cfg -k lazy_gettext -k _l --no-location \
		--sort-output -o translations/messages.pot .
	$(BIN)/pybabel -q update -i translations/messages.pot -d translations -l zh --no-fuzzy-matching
	$(BIN)/pybabel -q compile -d translations -l zh

# Re-pin the container image's dependencies (requirements.lock, with hashes) after a change to
# pyproject.toml's dependencies. Resolved with the image's Python where the host has it (Debian
# bookworm's python3, 3.11.2): markers such as redis's `async-timeout; python < 3.11.3` then
# resolve as they will in the image.
LOCK_PYTHON ?= $(firstword $(wildcard /usr/bin/python3) $(PYTHON))
lock:
	rm -rf .lock-venv && $(LOCK_PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q pip-tools
	.lock-venv/bin/pip-compile -q --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	rm -rf .lock-venv
