# hesscli: `make run` sets up and runs the main job; `make test` sets up and runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test bench lint docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/hesscli analyze mlp --lr 0.1

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m tests.benchmarks $(BENCH)

# Regenerate the tour's outputs (README.md and docs/tour.md) and its images in docs/,
# and the JSON and checks.yaml references (docs/json.md, docs/checks.md).
docs: $(STAMP)
	$(BIN)/python tools/tour.py $(wildcard README.md docs/tour.md)
	$(BIN)/python tools/reference.py

lint: $(STAMP)
	$(BIN)/ruff check hesscli tests problems
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) build *.egg-info
