# Two entry points for a fresh machine: `make repro` (the pipeline) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install repro test bench serve clean

# pip resolves torch and torchvision together from the registry (they run on CPU too).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

repro: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

bench: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/entropy.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/serve.py

serve: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/mlflow models serve -m models:/t2ieval@champion --env-manager local -p 5001

clean:
	rm -rf $(VENV)
