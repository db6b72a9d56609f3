# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint clean

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

clean:
	rm -rf $(VENV) .pytest_cache
