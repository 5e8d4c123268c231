# Two commands on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of torch; installed before the rest so no GPU build is pulled in.
TORCH_SPEC ?= torch==2.13.0
# A signal of the default scorer; its metadata asks for TensorFlow, which only its
# original Keras code needs: the build reads its weights and runs the network in torch.
SIGNAL_SPEC := toxic-comment-classifier==0.3.0
PYTEST_ARGS ?=

.PHONY: install run shell test soak compose-test lint format model bench bench-gpu quality compat-latency clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,ops]"
	$(BIN)/python -m pip install --quiet --no-deps "$(SIGNAL_SPEC)"
	touch $(STAMP)

install: $(STAMP) ## Create the virtualenv and install the service with its dev tools.

run: install ## Web + worker + beat (+ Redis if none answers) on embedded defaults.
	MODERATION_ENV=development $(BIN)/moderation run

shell: install ## A shell with `moderation` on PATH and MODERATION_ENV=development (make run's database).
	@echo "moderation is on PATH; MODERATION_ENV=development; exit to leave"
	@MODERATION_ENV=development VIRTUAL_ENV="$(abspath $(VENV))" PATH="$(abspath $(BIN)):$$PATH" $${SHELL:-bash} -i

test: install lint ## The whole suite, on SQLite and PostgreSQL, with a real worker.
	$(BIN)/python -m pytest $(PYTEST_ARGS)

soak: install ## Ten minutes at a steady rate through gunicorn and workers: flat memory, no loss.
	MODERATION_SOAK_SECONDS=$${SOAK_SECONDS:-600} $(BIN)/python -m pytest tests/faults/test_soak.py -k postgresql -s

compose-test: install ## Build the image and run docker-compose.yml with podman (opt-in, slow).
	$(BIN)/python -m pytest -m compose tests/compose -v $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check moderation workers tests bench
	$(BIN)/ruff format --check moderation workers tests bench

format: install
	$(BIN)/ruff format moderation workers tests bench
	$(BIN)/ruff check --fix moderation workers tests bench

model: install ## Build the offline model (from ../shared/data/train.csv when TRAIN is set).
	$(BIN)/moderation model build $(if $(TRAIN),--train $(TRAIN)) --force

bench: install ## Throughput and latency of the real stack (needs PostgreSQL, Redis, wrk).
	@command -v wrk >/dev/null || { echo "bench needs wrk (apt-get install wrk)"; exit 1; }
	$(BIN)/moderation model build
	$(BIN)/python -m bench.pipeline

bench-gpu: install ## On a CUDA machine: MiniLM and a bert-base-sized model at batch 32/128/512.
	$(BIN)/moderation model build
	$(BIN)/python -m bench.gpu

quality: install ## Each signal and the default scorer: ROC-AUC, recall, clean held, speed.
	$(BIN)/moderation model build
	$(BIN)/python -m bench.quality

compat-latency: install ## p50/p99 of the Perspective, OpenAI and Coral APIs through their clients.
	$(BIN)/moderation model build
	$(BIN)/python -m bench.compat_latency $(if $(REQUESTS),--requests $(REQUESTS))
	$(BIN)/python -m bench.compat_latency_coral

clean:
	rm -rf $(VENV) var build *.egg-info
