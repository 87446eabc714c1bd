# API contract (issue 15) and hostile input (issue 22), against a real TorchServe.
#   make fuzz                                  hostile run, then the long schemathesis run (each starts its own TorchServe)
#   make fuzz FUZZ_SECONDS=1200 FUZZ_SEED=7    20 minutes of each; FUZZ_EXAMPLES: schemathesis examples per operation
#   make fuzz-hostile FUZZ_SECONDS=1200 FUZZ_ARGS="--handler dtype=float32"   the hostile run alone (fuzz/run.py)
# The short, seeded runs are part of make test (tests/integration/test_openapi.py, tests/integration/test_fuzz.py).

PY ?= .venv/bin/python
FUZZ_EXAMPLES ?= 1000
FUZZ_SECONDS ?= 300
FUZZ_SEED ?= $(shell date +%s)
FUZZ_ARGS ?=

.PHONY: fuzz fuzz-hostile fuzz-schema

fuzz: fuzz-hostile fuzz-schema  ## hostile requests beyond the schema, then schemathesis (FUZZ_SECONDS each, FUZZ_SEED)

fuzz-hostile: $(VENV)/.installed protos  ## hostile requests + good neighbours in the same batches, REST and gRPC (fuzz/run.py) -> build/fuzz/<ts>/summary.json
	$(PY) -m fuzz.run --seconds $(FUZZ_SECONDS) --seed $(FUZZ_SEED) $(FUZZ_ARGS)

fuzz-schema: $(VENV)/.installed protos  ## long schemathesis run of docs/openapi.yaml against a real TorchServe (FUZZ_EXAMPLES, FUZZ_SECONDS, FUZZ_SEED)
	JA_NER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) JA_NER_FUZZ_SECONDS=$(FUZZ_SECONDS) JA_NER_FUZZ_SEED=$(FUZZ_SEED) \
	  $(PY) -m pytest -q -s -p no:cacheprovider tests/integration/test_openapi.py -k schemathesis $(PYTEST_ARGS)
