# `make demo` and `make test` are the two commands a new user runs; both install into .venv/ first.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/nas space show mnasnet
	$(BIN)/nas space sample mnasnet -n 3 --seed 0
	$(BIN)/nas arch info mnasnet_a1 --input-size 28 --in-chans 1 --num-classes 2
	$(BIN)/nas zoo --input-size 28 --in-chans 1 --num-classes 2
	$(BIN)/nas search experiments/quickstart.yaml --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest
