# The README's commands. Each creates .venv when missing and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_TEST := $(VENV)/.installed-test
STAMP_EXAMPLES := $(VENV)/.installed-examples
STAMP_BENCH := $(VENV)/.installed-bench

.PHONY: demo test bench bench-quick lint format clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[test]"
	touch $@

$(STAMP_EXAMPLES): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[examples]"
	touch $@

$(STAMP_BENCH): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[bench]"
	touch $@

## make demo: train a small classifier with optax and jaxloss; prints per epoch, saves a PNG.
demo: $(STAMP_EXAMPLES)
	$(PY) examples/quickstart.py

## make test: lint, then the whole suite (tests and doctests).
test: $(STAMP_TEST)
	$(PY) -m ruff check jaxloss tests benchmarks examples
	$(PY) -m ruff format --check jaxloss tests benchmarks examples
	$(PY) -m pytest -q -n 2 --dist loadfile

## make bench: every benchmark suite against the peers installed; writes benchmarks/results/.
bench: $(STAMP_BENCH)
	$(PY) -m benchmarks

## make bench-quick: the same at small sizes (a few minutes), for a smoke check of the runner.
bench-quick: $(STAMP_BENCH)
	$(PY) -m benchmarks --quick

lint:
	$(PY) -m ruff check jaxloss tests benchmarks examples

format:
	$(PY) -m ruff format jaxloss tests benchmarks examples
	$(PY) -m ruff check --fix jaxloss tests benchmarks examples

clean:
	rm -rf $(VENV) build dist *.egg-info
