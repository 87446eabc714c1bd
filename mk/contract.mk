# API contract (issue 15): docs/openapi.yaml, checked against the real TorchServe.
#   make fuzz                                  long schemathesis run (starts its own TorchServe)
#   make fuzz FUZZ_EXAMPLES=2000 FUZZ_SECONDS=900 FUZZ_SEED=7
# The short, seeded run is part of make test (tests/integration/test_openapi.py).

PY ?= .venv/bin/python
FUZZ_EXAMPLES ?= 1000
FUZZ_SECONDS ?= 300
FUZZ_SEED ?= $(shell date +%s)

.PHONY: fuzz

fuzz: $(VENV)/.installed protos  ## long schemathesis run of docs/openapi.yaml against a real TorchServe (FUZZ_EXAMPLES, FUZZ_SECONDS, FUZZ_SEED)
	JA_NER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) JA_NER_FUZZ_SECONDS=$(FUZZ_SECONDS) JA_NER_FUZZ_SEED=$(FUZZ_SEED) \
	  $(PY) -m pytest -q -s -p no:cacheprovider tests/integration/test_openapi.py -k schemathesis $(PYTEST_ARGS)
