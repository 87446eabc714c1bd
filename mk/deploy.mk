# Deployment (issue 8): images, Kubernetes and KServe manifests. See docs/deploy.md.
# No container engine runs here: `deploy-lint` lints and validates, `deploy-check` runs each
# Dockerfile's steps (same files, layout, CMD, HEALTHCHECK) on loopback, and the images are built
# elsewhere with the `docker build` lines at the top of each Dockerfile.

PY ?= .venv/bin/python
MODEL ?= models/ja-ner-small
MODEL_NAME ?= ja_ner
HADOLINT ?= $(firstword $(wildcard .venv/bin/hadolint) hadolint)
KSERVE_STORE ?= build/kserve/ja-ner

.PHONY: deploy-requirements deploy-lint deploy-check deploy-check-torchserve deploy-check-triton kserve-store

deploy-requirements:  ## rewrite deploy/requirements-*.txt (exact pins of each image) from .venv
	$(PY) deploy/requirements.py

deploy-lint:  ## hadolint the Dockerfiles, validate the k8s/KServe manifests, check image pins are current
	$(HADOLINT) deploy/Dockerfile.torchserve deploy/Dockerfile.triton
	$(PY) deploy/requirements.py --check
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/test_deploy_docker.py tests/unit/test_deploy_k8s.py

deploy-check: deploy-check-torchserve deploy-check-triton  ## run both images' steps here (no Docker)

deploy-check-torchserve: model_store/$(MODEL_NAME).mar  ## TorchServe image layout + CMD + HEALTHCHECK, auth on
	$(PY) -m deploy.image_check torchserve --mar model_store/$(MODEL_NAME).mar

deploy-check-triton:  ## Triton image layout + build step + CMD + HEALTHCHECK
	$(PY) -m deploy.image_check triton --model $(MODEL)

kserve-store: model_store/$(MODEL_NAME).mar  ## the storageUri layout KServe's TorchServe runtime expects, in $(KSERVE_STORE)
	rm -rf $(KSERVE_STORE)
	mkdir -p $(KSERVE_STORE)/config $(KSERVE_STORE)/model-store
	cp deploy/kserve/config.properties $(KSERVE_STORE)/config/config.properties
	cp model_store/$(MODEL_NAME).mar $(KSERVE_STORE)/model-store/$(MODEL_NAME).mar
	@echo "upload $(KSERVE_STORE)/ to the storageUri of deploy/kserve/inferenceservice.yaml"
