PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test demo lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: install lint
	$(BIN)/python -m pytest

demo: install
	$(BIN)/nnrun train configs/quickstart.yaml
	@run=$$(ls -td runs/*-quickstart | head -1); \
	  echo "run folder: $$run"; echo "plots:      $$run/plots/"; \
	  [ -f "$$run/report.html" ] && echo "report:     $$run/report.html" || true

lint: install
	$(BIN)/ruff check nnrun tests experiments

bench: install
	$(BIN)/python experiments/benchmark.py
	$(BIN)/python experiments/bench_sweep.py

clean:
	rm -rf $(VENV) build *.egg-info nnrun.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
