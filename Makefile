# The README's commands. Each creates .venv when missing and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_TEST := $(VENV)/.installed-test
STAMP_DOCS := $(VENV)/.installed-docs
STAMP_EXAMPLES := $(VENV)/.installed-examples
STAMP_BENCH := $(VENV)/.installed-bench
# compat: a plain path entry instead of setuptools' import hook, so type checkers and IDEs
# see the editable package (the hook hides it: "Cannot find implementation or library stub").
EDITABLE := --config-settings editable_mode=compat
# mkdocs-material prints a banner about MkDocs 2.0 on every build; it is not a build warning.
# The plots evaluate each loss on a few hundred points: compilation, not running, is their cost.
DOCS_ENV := NO_MKDOCS_2_WARNING=1 MPLBACKEND=Agg JAX_PLATFORMS=cpu \
	XLA_FLAGS=--xla_backend_optimization_level=0

.PHONY: demo test docs typecheck bench bench-quick lint format dist clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PY) -m pip install -q $(EDITABLE) -e ".[test,docs]"
	touch $@ $(STAMP_DOCS)

$(STAMP_DOCS): pyproject.toml | $(PY)
	$(PY) -m pip install -q $(EDITABLE) -e ".[docs]"
	touch $@

$(STAMP_EXAMPLES): pyproject.toml | $(PY)
	$(PY) -m pip install -q $(EDITABLE) -e ".[examples]"
	touch $@

$(STAMP_BENCH): pyproject.toml | $(PY)
	$(PY) -m pip install -q $(EDITABLE) -e ".[bench]"
	touch $@

## make demo: train a small classifier with optax and jaxloss; prints per epoch, saves a PNG.
demo: $(STAMP_EXAMPLES)
	$(PY) examples/quickstart.py

## make test: lint, the whole suite (tests, doctests, the installed wheel), type-check, the docs.
test: $(STAMP_TEST)
	$(PY) -m ruff check jaxloss tests benchmarks examples docs/_gen
	$(PY) -m ruff format --check jaxloss tests benchmarks examples docs/_gen
	$(PY) -m pytest -q -n 2 --dist worksteal --durations=15
	$(PY) -m mypy
	$(DOCS_ENV) $(PY) -m mkdocs build --strict --quiet

## make docs: the documentation site into site/ (warnings are errors).
docs: $(STAMP_DOCS)
	$(DOCS_ENV) $(PY) -m mkdocs build --strict

## make typecheck: mypy over jaxloss/ and examples/ (configured in pyproject.toml).
typecheck: $(STAMP_TEST)
	$(PY) -m mypy

## make dist: sdist and wheel into dist/, checked with twine.
dist: $(STAMP_TEST)
	rm -rf dist
	$(PY) -m build --outdir dist
	$(PY) -m twine check --strict dist/*

## make bench: every benchmark suite against the peers installed; writes benchmarks/results/.
bench: $(STAMP_BENCH)
	$(PY) -m benchmarks

## make bench-quick: the same at small sizes (a few minutes), for a smoke check of the runner.
bench-quick: $(STAMP_BENCH)
	$(PY) -m benchmarks --quick

lint:
	$(PY) -m ruff check jaxloss tests benchmarks examples docs/_gen

format:
	$(PY) -m ruff format jaxloss tests benchmarks examples docs/_gen
	$(PY) -m ruff check --fix jaxloss tests benchmarks examples docs/_gen

clean:
	rm -rf $(VENV) build dist site *.egg-info
