PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# One stamp per layer, so that `make demo` installs only what nnrun needs to run and `make test`
# adds the test tools (pytest, hypothesis, ruff, bandit), Dask and the optional runtimes the tests
# compare with; either works from a fresh clone.
RUNTIME := $(VENV)/.installed-runtime
DEV     := $(VENV)/.installed-dev

.PHONY: install install-dev test demo lint bench mutation clean

install: $(RUNTIME)

install-dev: $(DEV)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV): $(RUNTIME)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# WITH_TORCH=1 adds PyTorch, the oracle some tests compare with (they skip without it). Here
# torch==2.13.0 is a CPU build on local disk; elsewhere pip may fetch a large CUDA build.
TORCH_VERSION ?= 2.13.0

test: $(DEV) lint
	$(if $(WITH_TORCH),$(BIN)/pip install --quiet 'torch==$(TORCH_VERSION)')
	$(BIN)/python -m pytest

demo: $(RUNTIME)
	$(BIN)/nnrun train configs/quickstart.yaml
	@run=$$(ls -td runs/*-quickstart | head -1); \
	  echo "run folder: $$run"; echo "plots:      $$run/plots/"; \
	  [ -f "$$run/report.html" ] && echo "report:     $$run/report.html" || true
	@echo; echo "Try next:"; \
	  echo "  $(BIN)/nnrun evaluate latest                  # confusion matrix, per-class scores"; \
	  echo "  $(BIN)/nnrun lr-find configs/digits-mlp.yaml  # a learning rate to start from"; \
	  echo "  $(BIN)/nnrun sweep configs/digits-mlp.yaml -p optimizer.lr=0.01,0.1,1"; \
	  echo "  $(BIN)/nnrun --help                           # every command, with examples"

lint: $(DEV)
	$(BIN)/ruff check nnrun tests experiments
	$(BIN)/bandit -q -r nnrun

# Benchmarks run with OpenBLAS choosing its own kernel, as on users' machines: the overrides some
# machines set (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE) are unset for these commands alone.
NO_BLAS_OVERRIDES := env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE

bench: $(RUNTIME)
	@if $(BIN)/python -c 'import torch' 2>/dev/null; then compare='--compare torch'; \
	  else compare=''; echo 'PyTorch is not installed: nnrun bench without --compare torch (README: Speed)'; fi; \
	  echo "$(BIN)/nnrun bench $$compare"; $(NO_BLAS_OVERRIDES) $(BIN)/nnrun bench $$compare
	$(NO_BLAS_OVERRIDES) $(BIN)/python experiments/bench_sweep.py

# Mutation testing of the engine (nnrun/nn/) with its own tests (tests/test_nn_*.py, listed under
# [tool.mutmut] in pyproject.toml); slow (tens of minutes), so not part of `make test`. Results
# stay in mutants/ between runs: `$(BIN)/mutmut results` lists the survivors, `mutmut show NAME`
# shows one.
mutation: $(DEV)
	$(BIN)/mutmut run
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) build *.egg-info nnrun.egg-info .pytest_cache mutants
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
