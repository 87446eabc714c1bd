# Load tests (issue 5): headless Locust over REST and/or gRPC; see docs/loadtest.md.
#   make loadtest                                   # server started here if none answers on :8080
#   make loadtest PROTOCOL=grpc USERS=8 RUN_TIME=30s MIX=long
#   make loadtest HOST=http://10.0.0.5:8080 TOKEN=... MAX_P99_MS=500 MIN_RPS=20
# Results: loadtest/results/<UTC timestamp>/ (summary.json, summary.md, report.html, locust_*.csv).

USERS ?= 16
SPAWN_RATE ?= 16
RUN_TIME ?= 60s
PROTOCOL ?= both
MIX ?= mixed
CORPUS ?=
HOST ?=
GRPC_TARGET ?=
METRICS_URL ?=
TOKEN ?=
MAX_P99_MS ?=
MIN_RPS ?=
LOADTEST_ARGS ?=

.PHONY: loadtest loadtest-selftest

loadtest: export LOADTEST_TOKEN = $(TOKEN)  # via the environment: kept out of the echoed command
loadtest: $(VENV)/.installed protos  ## Locust load test (USERS per protocol, RUN_TIME, PROTOCOL=rest|grpc|both, MIX, HOST)
	$(PY) loadtest/run.py --protocol '$(PROTOCOL)' --users '$(USERS)' \
	  --spawn-rate '$(SPAWN_RATE)' --run-time '$(RUN_TIME)' --mix '$(MIX)' --model '$(MODEL_NAME)' \
	  $(if $(strip $(CORPUS)),--corpus '$(CORPUS)') $(if $(strip $(HOST)),--host '$(HOST)') \
	  $(if $(strip $(GRPC_TARGET)),--grpc-target '$(GRPC_TARGET)') \
	  $(if $(strip $(METRICS_URL)),--metrics-url '$(METRICS_URL)') \
	  $(if $(strip $(MAX_P99_MS)),--max-p99-ms '$(MAX_P99_MS)') $(if $(strip $(MIN_RPS)),--min-rps '$(MIN_RPS)') \
	  $(LOADTEST_ARGS)

loadtest-selftest: $(VENV)/.installed protos  ## the load test against a stand-in server (no model): checks the tooling
	$(PY) -m pytest -q -m integration tests/integration/test_loadtest_selftest.py
