# Deployment (issue 8, 23): images, Kubernetes and KServe manifests. See docs/deploy.md.
# `deploy-lint` lints and validates, `deploy-check` runs each Dockerfile's steps without a container
# engine; `images` builds both images with podman and `test-images` runs them (containers, drain,
# `podman kube play` of the manifests). podman reads deploy/podman/containers.conf (deploy/images.py).

PY ?= .venv/bin/python
MODEL ?= models/ja-ner-small
MODEL_NAME ?= ja_ner
HADOLINT ?= $(firstword $(wildcard .venv/bin/hadolint) hadolint)
KSERVE_STORE ?= build/kserve/ja-ner

BASE ?= auto
IMAGES_PY := $(PY) deploy/images.py

.PHONY: deploy-requirements deploy-lint deploy-check deploy-check-torchserve deploy-check-triton kserve-store \
	base-images images test-images

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

base-images:  ## stand-ins for the official base images from Debian packages (mmdebstrap + podman import)
	python3 deploy/images.py base

images: model_store/$(MODEL_NAME).mar  ## both images with podman (BASE=auto|official|standin); sizes, build times
	$(IMAGES_PY) build --base $(BASE)

# Skips (exit 0, with the reason) only where podman cannot run a container at all.
test-images: $(VENV)/.installed protos  ## run the images: health, answers, drain, kube play of deploy/k8s (podman)
	@reason=$$($(IMAGES_PY) preflight); rc=$$?; \
	if [ $$rc -eq 3 ]; then echo "make test-images: SKIPPED: $$reason"; exit 0; fi; \
	if [ $$rc -ne 0 ]; then echo "$$reason" >&2; exit $$rc; fi; \
	set -ex; $(MAKE) images; $(PY) -m pytest -q -s -p no:cacheprovider tests/images $(PYTEST_ARGS)
