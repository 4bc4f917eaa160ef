# Two entry points for a fresh machine: `make repro` (the pipeline) and `make test` (the suite).
# Both install the locked environment (requirements/dev.lock, every version pinned with hashes)
# into .venv first; nothing is resolved at install time.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/dev.lock
RUNTIME_LOCK := requirements/runtime.lock
CONSTRAINTS := requirements/constraints.txt
# the pipeline and the tests run with the venv first on PATH, as after `. .venv/bin/activate`
RUN := PATH="$(CURDIR)/$(BIN):$$PATH" VIRTUAL_ENV="$(CURDIR)/$(VENV)"
# how the lock files are resolved (`make lock`): the platform this project is built on
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --generate-hashes --no-header \
	--python-version 3.11 --python-platform x86_64-manylinux_2_28 --annotation-style line \
	-c $(CONSTRAINTS)

.PHONY: install lock repro test lint format seeds bench serve clean leaderboard

$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP)

# Re-resolve both lock files from pyproject.toml (needs the registry); commit them together.
lock: install
	$(UV_COMPILE) -o $(RUNTIME_LOCK)
	$(UV_COMPILE) --extra test --extra dev -c $(RUNTIME_LOCK) -o $(LOCK)

# the NumPy/OpenBLAS kernels that base.cpu_isa pins (t2ieval.pipeline.exports), exported
# before dvc starts the stages: a stage that finds them set does not restart itself to set them
# (3-5 s a stage). Should this fail, each stage pins them itself, as under a plain `dvc repro`.
KERNEL_EXPORTS := $(BIN)/python -m t2ieval.pipeline.exports params.yaml

repro: install
	eval "$$($(KERNEL_EXPORTS))" && $(RUN) $(BIN)/dvc repro

# style first (ruff, configured in pyproject.toml), then the whole suite
test: lint
	$(RUN) HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src stages tests benchmarks
	$(BIN)/ruff format --check src stages tests benchmarks

format: install
	$(BIN)/ruff check --fix src stages tests benchmarks
	$(BIN)/ruff format src stages tests benchmarks

# The pipeline under three model seeds (base.seed 0, 1, 2) as DVC experiments; prints mean ± sd.
seeds: install
	$(RUN) $(BIN)/python benchmarks/seeds.py --seeds 0 1 2

bench: install
	$(RUN) $(BIN)/python benchmarks/entropy.py
	$(RUN) $(BIN)/python benchmarks/serve.py

# The embedded leaderboard, after `make repro`: the synthetic renderer as generators of known
# fidelity, ranked by the registered model with 95 % intervals; FID/KID/IS/CLIPScore labelled with
# their feature space. A DVC project of its own (leaderboard/dvc.yaml, params.yaml): reruns only
# when the model, the code or the params change. Prints the leaderboard; files in leaderboard/out,
# and one MLflow run in experiment t2ieval-benchmark.
leaderboard: install
	@test -d models/clip || { echo "make leaderboard ranks with the pipeline's model: run make repro first" >&2; exit 2; }
	cd leaderboard && $(RUN) $(CURDIR)/$(BIN)/dvc repro
	@cat leaderboard/out/leaderboard.txt
	-@$(RUN) $(BIN)/t2ieval benchmark-demo --params leaderboard/params.yaml --check leaderboard/out/leaderboard.csv

serve: install
	$(RUN) $(BIN)/mlflow models serve -m models:/t2ieval@champion --env-manager local -h 127.0.0.1 -p 5001

clean:
	rm -rf $(VENV)
