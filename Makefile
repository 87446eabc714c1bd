# ja-ner-serve: every target is documented in README.md ("Make targets").
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
MODEL_NAME ?= ja_ner
NAME ?= $(MODEL_NAME)
DEFAULT_MODEL := models/ja-ner-small
MODEL ?= $(DEFAULT_MODEL)
VERSION ?= 1.0
CONFIG ?= config.properties
MAR := model_store/$(NAME).mar
PYTEST_ARGS ?=

.PHONY: help install check-java lock archive serve stop test test-unit test-integration lint format clean

help:  ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

check-java:  ## TorchServe 0.12 needs Java 17+
	@v=$$(java -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -1); \
	if [ -z "$$v" ] || [ "$$v" -lt 17 ]; then echo "Java 17+ is required (found: $${v:-none})" >&2; exit 1; fi; \
	echo "java $$v OK"

$(VENV)/.installed: requirements.lock pyproject.toml
	python3.11 -m venv $(VENV) 2>/dev/null || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q --no-deps -r requirements.lock
	$(PIP) install -q --no-deps -e .
	touch $@

install: check-java $(VENV)/.installed protos  ## venv in .venv with the pinned packages, generated gRPC stubs

lock:  ## rewrite requirements.lock from the current venv
	(echo "# Exact pins of everything in .venv (make install uses this with --no-deps). Regenerate: make lock"; \
	 $(PIP) freeze --all --exclude-editable | grep -vE '^(ja-ner|pip==)') > requirements.lock

archive: $(VENV)/.installed  ## model_store/$(NAME).mar from MODEL (a local folder or a hub id)
	$(PY) -m handler.archive --model $(MODEL) --name $(NAME) --version $(VERSION) --export-path model_store

# The default archive is rebuilt when the model, handler or core code changes.
model_store/$(MODEL_NAME).mar: $(wildcard $(DEFAULT_MODEL)/*) $(wildcard ja_ner/*.py) $(wildcard handler/*.py) model-config.yaml
	$(MAKE) archive MODEL=$(DEFAULT_MODEL) NAME=$(MODEL_NAME)

serve: install model_store/$(MODEL_NAME).mar  ## serve the default model on 127.0.0.1 (REST 8080, gRPC 7070)
	$(PY) -m handler.server start --config $(CONFIG)
	@echo "try: curl -X POST localhost:8080/predictions/$(MODEL_NAME) -H 'Content-Type: text/plain' --data '鈴木は熊本県の阿蘇山に登った'"

stop:  ## stop the server started by make serve
	$(PY) -m handler.server stop

test: install  ## the whole suite: unit + integration (starts its own servers)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-unit: $(VENV)/.installed protos  ## unit tests only (no server, no Java needed)
	$(PY) -m pytest -q -m "not integration" $(PYTEST_ARGS)

test-integration: install  ## integration tests only
	$(PY) -m pytest -q -m integration $(PYTEST_ARGS)

lint: $(VENV)/.installed  ## ruff check + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed  ## ruff format + autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:  ## remove build outputs (not the venv)
	rm -rf build model_store/*.mar logs

include $(wildcard mk/*.mk)
