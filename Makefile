PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest

demo: install
	$(BIN)/nnrun train configs/quickstart.yaml

bench: install
	$(BIN)/python -m nnrun.bench

clean:
	rm -rf $(VENV) build *.egg-info nnrun.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
