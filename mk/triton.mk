# Triton (issue 8): model repository and a real tritonserver from the nvidia-pytriton wheel.
# See docs/deploy.md ("Triton"). Variables may be overridden on the command line:
#   make triton-serve MODEL=models/ja-ner-small TRITON_HTTP_PORT=9000
#   make triton-config TRITON_KIND=gpu

PY ?= .venv/bin/python
MODEL ?= models/ja-ner-small
MODEL_NAME ?= ja_ner
VERSION ?= 1.0
TRITON_REPO ?= build/triton/model_repository
TRITON_WORKDIR ?= build/triton/run
TRITON_HOST ?= 127.0.0.1
TRITON_HTTP_PORT ?= 8000
TRITON_GRPC_PORT ?= 8001
TRITON_METRICS_PORT ?= 8002
TRITON_KIND ?= cpu
TRITON_INSTANCES ?= 1
TRITON_MAX_BATCH ?= 32
TRITON_QUEUE_DELAY_US ?= 2000
TRITON_VERSION ?= 1
TRITON_BUILD_ARGS ?=
TRITON_SMOKE_TEXT ?= 鈴木は熊本県の阿蘇山に登った

TRITON_BUILD = $(PY) deploy/triton/build_repo.py --model $(MODEL) --out $(TRITON_REPO) --name $(MODEL_NAME) \
  --version $(TRITON_VERSION) --kind $(TRITON_KIND) --instances $(TRITON_INSTANCES) \
  --max-batch-size $(TRITON_MAX_BATCH) --max-queue-delay-us $(TRITON_QUEUE_DELAY_US) \
  --model-version-label $(VERSION) $(TRITON_BUILD_ARGS)
TRITON_RUN = $(PY) deploy/triton/serve.py --model-repository $(TRITON_REPO) --workdir $(TRITON_WORKDIR) \
  --host $(TRITON_HOST) --http-port $(TRITON_HTTP_PORT) --grpc-port $(TRITON_GRPC_PORT) \
  --metrics-port $(TRITON_METRICS_PORT) --model $(MODEL_NAME)

.PHONY: triton-repo triton-config triton-serve triton-smoke triton-clean

triton-repo:  ## Triton model repository $(TRITON_REPO)/$(MODEL_NAME) for MODEL (model.py, config.pbtxt, core, model link)
	$(TRITON_BUILD)

triton-config:  ## print the config.pbtxt triton-repo would write (TRITON_KIND=gpu for the GPU variant)
	$(TRITON_BUILD) --print-config

triton-serve: triton-repo  ## real tritonserver (CPU) on $(TRITON_HOST):$(TRITON_HTTP_PORT)/$(TRITON_GRPC_PORT), foreground
	$(TRITON_RUN)

triton-smoke: triton-repo  ## start tritonserver, one KServe-v2 inference over HTTP, stop
	$(TRITON_RUN) --smoke '$(TRITON_SMOKE_TEXT)'

triton-clean:  ## remove the generated repository and server workdir
	rm -rf $(TRITON_REPO) $(TRITON_WORKDIR)
