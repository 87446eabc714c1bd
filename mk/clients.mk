# Generated REST clients (issue 26): docs/openapi.yaml -> build/clients/ (never committed).
#   make clients          both: build/clients/python (openapi-python-client), build/clients/ts
#                         (openapi-typescript types + openapi-fetch, npm ci from clients/ts/package-lock.json)
#   make clients-python   the Python one only (no Node needed)
# Tested against the real server in make test: tests/integration/test_generated_clients.py.

PY ?= .venv/bin/python

.PHONY: clients clients-python clients-ts

clients: $(VENV)/.installed  ## generated Python and TypeScript clients of docs/openapi.yaml in build/clients/
	$(PY) -m clients.generate python ts

clients-python: $(VENV)/.installed  ## the generated Python client only (build/clients/python)
	$(PY) -m clients.generate python

clients-ts: $(VENV)/.installed  ## the generated TypeScript types + compiled example only (build/clients/ts; Node 20, npm)
	$(PY) -m clients.generate ts
