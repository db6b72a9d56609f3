# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint clean bench bench-postgres

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

test: $(VENV)/.installed lint
	$(BIN)/python -m pytest

# Not part of `make test`: figures depend on the machine. Results go to bench/README.md.
bench: $(VENV)/.installed
	$(BIN)/python bench/run.py --write-readme

bench-postgres: $(VENV)/.installed
	$(BIN)/python bench/run.py --postgres --write-readme

clean:
	rm -rf $(VENV) .pytest_cache
