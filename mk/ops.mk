# Reliability and security (issue 7): soak run and the fault / production-config tests.
# docs/operations.md explains the figures.

PY ?= .venv/bin/python
DURATION ?= 10m
SOAK_ARGS ?=

.PHONY: soak test-ops

soak: $(VENV)/.installed protos model_store/$(MODEL_NAME).mar  ## sustained REST+gRPC load: make soak DURATION=10m -> build/soak/<ts>/summary.json
	$(PY) tools/soak.py --duration $(DURATION) $(SOAK_ARGS)

test-ops: $(VENV)/.installed protos  ## bad-input matrix, property, fault and production-config tests only
	$(PY) -m pytest -q tests/unit/test_properties.py tests/integration/test_bad_input.py \
	  tests/integration/test_faults.py tests/integration/test_prod_config.py $(PYTEST_ARGS)
