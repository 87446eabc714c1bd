"""Kubernetes and KServe manifests under deploy/, validated offline.

Core kinds go through kubernetes-validate's strict schemas (unknown fields are errors). The KServe
InferenceService is a custom resource: it is checked against the v1beta1 fields KServe documents
(table below, from the InferenceService CRD), its container fields as a core Container, and, when
KSERVE_CRD names a copy of KServe's CRD (config/crd/full/serving.kserve.io_inferenceservices.yaml),
against that schema with unknown fields refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
ISVC = REPO / "deploy" / "kserve" / "inferenceservice.yaml"
K8S_VERSION = "1.37.0"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _all_core() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{p.name}:{d['kind']}", d) for p in K8S for d in _documents(p)]


@pytest.mark.parametrize(("where", "doc"), _all_core(), ids=[w for w, _ in _all_core()])
def test_manifest_is_valid_kubernetes(where: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_strict_validation_catches_a_typo() -> None:
    (deployment,) = [d for d in _documents(REPO / "deploy" / "k8s" / "torchserve.yaml") if d["kind"] == "Deployment"]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def _by_kind(path: Path) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in _documents(path)}


@pytest.mark.parametrize("name", ["torchserve.yaml", "torchserve-gpu.yaml", "triton.yaml"])
def test_deployment_service_and_hpa_fit_together(name: str) -> None:
    kinds = _by_kind(REPO / "deploy" / "k8s" / name)
    deployment, service, hpa = kinds["Deployment"], kinds["Service"], kinds["HorizontalPodAutoscaler"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["spec"]["containers"]
    port_names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert {"requests", "limits"} <= set(container["resources"])
    health = "/ping" if "torchserve" in name else "/v2/health/ready"
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == health
    assert container["livenessProbe"]["httpGet"]["path"] in (health, "/v2/health/live")
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_gpu_variant_requests_a_gpu_and_scales_on_queue_latency() -> None:
    kinds = _by_kind(REPO / "deploy" / "k8s" / "torchserve-gpu.yaml")
    (container,) = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    (metric,) = kinds["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == "ja_ner_queue_latency_ms"
    assert "ja_ner_queue_latency_ms" in (REPO / "docs" / "deploy.md").read_text(), "document the adapter rule"


def test_torchserve_pods_turn_token_auth_off_and_the_network_policy_guards_them() -> None:
    kinds = _by_kind(REPO / "deploy" / "k8s" / "torchserve.yaml")
    (container,) = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TS_DISABLE_TOKEN_AUTHORIZATION"] == "true"  # per-pod random keys (docs/deploy.md)
    policy = kinds["NetworkPolicy"]["spec"]
    assert (
        policy["podSelector"]["matchLabels"].items() <= kinds["Deployment"]["spec"]["selector"]["matchLabels"].items()
    )
    allowed = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
    assert allowed == {8080, 7070, 8082} and 8081 not in allowed


# -- KServe ---------------------------------------------------------------------------------------

# Fields of serving.kserve.io/v1beta1 InferenceService this project uses, with what KServe
# documents for them (InferenceService CRD and the TorchServe runtime docs).
KSERVE_FIELDS: dict[tuple[str, ...], set[str]] = {
    (): {"apiVersion", "kind", "metadata", "spec"},
    ("spec",): {"predictor", "transformer", "explainer"},
    ("spec", "predictor"): {
        "minReplicas",
        "maxReplicas",
        "scaleMetric",
        "scaleTarget",
        "timeout",
        "securityContext",
        "model",
        "serviceAccountName",
        "nodeSelector",
        "tolerations",
        "annotations",
        "labels",
    },  # fmt: skip
    ("spec", "predictor", "model"): {
        "modelFormat",
        "runtime",
        "protocolVersion",
        "storageUri",
        "runtimeVersion",
        # the model container may override any core Container field (checked as a Container below)
        "image",
        "args",
        "env",
        "ports",
        "readinessProbe",
        "livenessProbe",
        "startupProbe",
        "resources",
    },  # fmt: skip
    ("spec", "predictor", "model", "modelFormat"): {"name", "version"},
}
KSERVE_ENUMS = {
    ("spec", "predictor", "scaleMetric"): {"cpu", "memory", "concurrency", "rps"},
    ("spec", "predictor", "model", "protocolVersion"): {"v1", "v2", "grpc-v2"},
    ("metadata", "annotations", "serving.kserve.io/deploymentMode"): {"Serverless", "RawDeployment", "ModelMesh"},
}
# The kserve-torchserve ClusterServingRuntime starts TorchServe with these paths under the storageUri mount.
RUNTIME_CONFIG = "/mnt/models/config/config.properties"
RUNTIME_MODEL_STORE = "/mnt/models/model-store"


def _isvc() -> dict[str, Any]:
    (doc,) = _documents(ISVC)
    return doc


def _walk(doc: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    found = []
    if isinstance(doc, dict) and path in KSERVE_FIELDS:
        for key, value in doc.items():
            found.append((path, key))
            found.extend(_walk(value, (*path, key)))
    return found


def test_inference_service_uses_only_documented_fields() -> None:
    doc = _isvc()
    assert (doc["apiVersion"], doc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    for path, key in _walk(doc):
        assert key in KSERVE_FIELDS[path], f"{'.'.join((*path, key))} is not a documented InferenceService field"
    for path, allowed in KSERVE_ENUMS.items():
        value: Any = doc
        for part in path:
            value = value.get(part, {}) if isinstance(value, dict) else {}
        assert value in allowed, f"{'.'.join(path)}={value!r}"
    predictor = doc["spec"]["predictor"]
    assert predictor["model"]["modelFormat"]["name"] == "pytorch"  # what kserve-torchserve supports
    assert predictor["model"]["runtime"] == "kserve-torchserve"
    assert predictor["model"]["storageUri"].split("://")[0] in {"pvc", "gs", "s3", "https", "hdfs", "oci"}
    assert predictor["minReplicas"] <= predictor["maxReplicas"]


def test_inference_service_container_fields_are_valid_core_fields() -> None:
    model = _isvc()["spec"]["predictor"]["model"]
    container = {k: v for k, v in model.items() if k not in ("modelFormat", "runtime", "protocolVersion", "storageUri")}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "check"},
        "spec": {"containers": [{"name": "kserve-container", **container}]},
    }
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert container["readinessProbe"]["httpGet"]["path"] == "/ping"


def test_kserve_store_config_matches_the_runtime_and_the_service() -> None:
    config = dict(
        line.split("=", 1)
        for line in (REPO / "deploy" / "kserve" / "config.properties").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert config["model_store"] == RUNTIME_MODEL_STORE
    assert config["load_models"] == "ja_ner=ja_ner.mar"
    port = int(config["inference_address"].rsplit(":", 1)[1])
    model = _isvc()["spec"]["predictor"]["model"]
    assert port == model["ports"][0]["containerPort"] == model["readinessProbe"]["httpGet"]["port"]
    makefile = (REPO / "mk" / "deploy.mk").read_text()
    assert "$(KSERVE_STORE)/config/config.properties" in makefile and "$(KSERVE_STORE)/model-store/" in makefile
    assert RUNTIME_CONFIG.removeprefix("/mnt/models/") == "config/config.properties"


@pytest.mark.skipif(not os.environ.get("KSERVE_CRD"), reason="set KSERVE_CRD to KServe's InferenceService CRD file")
def test_inference_service_against_the_crd_schema() -> None:
    import jsonschema

    crd = yaml.safe_load(Path(os.environ["KSERVE_CRD"]).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]

    def closed(schema: Any) -> Any:  # CRDs prune unknown fields silently: make them errors here
        if isinstance(schema, list):
            return [closed(s) for s in schema]
        if not isinstance(schema, dict):
            return schema
        out = {k: closed(v) for k, v in schema.items()}
        open_object = out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
        if open_object and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out

    errors = list(jsonschema.Draft7Validator(closed(version["schema"]["openAPIV3Schema"])).iter_errors(_isvc()))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
