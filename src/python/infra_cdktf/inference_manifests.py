"""
The inference service's Kubernetes objects, as plain manifests.

Plain dicts keep them in Kubernetes' own schema, so tests validate each one strictly with
kubernetes-validate, and the inference stack emits them unchanged (`kubernetes_manifest`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from infra_cdktf import contract
from infra_cdktf.scheduling import GPU_NODE_SELECTOR, GPU_TOLERATION
from infra_cdktf.settings import AppSettings

Manifest = dict[str, Any]
LABELS = {"app.kubernetes.io/name": contract.APP, "app.kubernetes.io/part-of": "bert-serve"}
SELECTOR = {"app.kubernetes.io/name": contract.APP}
CONFIG_MAP = "bert-inference-config"
API_KEY_SECRET = "bert-inference-api-key"
REGISTRY_SECRET = "bert-inference-registry"
# A hash of the ConfigMap's data in the pod template: a changed setting rolls the pods.
CONFIG_CHECKSUM_ANNOTATION = "bert-serve/config-sha256"
API_KEY_DIR = "/var/run/secrets/bert-serve"
SERVICE_ACCOUNT = "bert-inference"
RUN_AS = 10001
SHUTDOWN_GRACE_SECONDS = 30
PRESTOP_SLEEP_SECONDS = 10


def metadata(name: str, namespace: str | None = contract.NAMESPACE) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(LABELS)}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def namespace() -> Manifest:
    meta = metadata(contract.NAMESPACE, None)
    # Pod Security Admission: the inference pods meet the `restricted` profile.
    meta["labels"] |= {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
    }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def config_map(settings: AppSettings) -> Manifest:
    """The seed's keys (MODEL_NAME, MAX_SEQUENCE_LENGTH, BATCH_SIZE, ONNX_EXECUTION_PROVIDER) and
    what the cluster needs on top."""
    data = {
        "MODEL_NAME": settings.model_name,
        "MAX_SEQUENCE_LENGTH": str(settings.max_sequence_length),
        "BATCH_SIZE": str(settings.batch_size),
        "ONNX_EXECUTION_PROVIDER": "CUDA",
        "PRECISION": "fp16",
        "HOST": "0.0.0.0",
        "PORT": str(contract.HTTP_PORT),
        "MODEL_CACHE_DIR": f"{contract.MODEL_VOLUME_PATH}/cache",
        "LOG_FORMAT": "json",
        "SHUTDOWN_GRACE_SECONDS": str(SHUTDOWN_GRACE_SECONDS),
        "HF_HOME": f"{contract.MODEL_VOLUME_PATH}/hf",
    }
    if contract.METRICS_PORT != contract.HTTP_PORT:
        data[contract.METRICS_PORT_SETTING] = str(contract.METRICS_PORT)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(CONFIG_MAP),
        "data": data,
    }


def service_account() -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(SERVICE_ACCOUNT),
        "automountServiceAccountToken": False,
    }


def container_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _mounts() -> list[dict[str, Any]]:
    return [
        {"name": "model-cache", "mountPath": contract.MODEL_VOLUME_PATH},
        {"name": "tmp", "mountPath": "/tmp"},
    ]


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def config_checksum(settings: AppSettings) -> str:
    data = config_map(settings)["data"]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def pod_scheduling(settings: AppSettings) -> dict[str, Any]:
    """GPU pool only (it is tainted for GPU work); pull secret when the registry is private."""
    scheduling: dict[str, Any] = {
        "nodeSelector": dict(GPU_NODE_SELECTOR),
        "tolerations": [GPU_TOLERATION],
    }
    if settings.registry_username:
        scheduling["imagePullSecrets"] = [{"name": REGISTRY_SECRET}]
    return scheduling


def container_ports() -> list[dict[str, Any]]:
    ports = [{"name": "http", "containerPort": contract.HTTP_PORT, "protocol": "TCP"}]
    if contract.METRICS_PORT != contract.HTTP_PORT:
        ports.append({"name": "metrics", "containerPort": contract.METRICS_PORT, "protocol": "TCP"})
    return ports


def deployment(settings: AppSettings) -> Manifest:
    env_from = [{"configMapRef": {"name": CONFIG_MAP}}]
    prepare = {
        "name": "prepare-model",
        "image": settings.image,
        "imagePullPolicy": "Always",
        # Downloads and converts the model into the cache volume; a no-op when already prepared.
        "command": [contract.PREPARE_COMMAND],
        "args": [
            "$(MODEL_NAME)",
            "--out",
            contract.PREPARED_MODEL_DIR,
            "--device",
            "cuda",
            "--precision",
            "fp16",
            "--cache-dir",
            contract.HUB_CACHE_DIR,
        ],
        "envFrom": env_from,
        "resources": {
            "requests": {"cpu": "1", "memory": "3Gi"},
            "limits": {"cpu": "4", "memory": "6Gi"},
        },
        "securityContext": container_security(),
        "volumeMounts": _mounts(),
    }
    env: list[dict[str, Any]] = [{"name": "MODEL_NAME", "value": contract.PREPARED_MODEL_DIR}]
    api_mounts = _mounts()
    volumes: list[dict[str, Any]] = []
    if settings.require_api_key:
        # A file, not an environment variable: it stays out of `kubectl describe` and crash dumps.
        env.append({"name": "API_KEY_FILE", "value": f"{API_KEY_DIR}/api-key"})
        api_mounts.append({"name": "api-key", "mountPath": API_KEY_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "api-key",
                "secret": {"secretName": API_KEY_SECRET, "defaultMode": 0o440},
            }
        )
    api = {
        "name": "api",
        "image": settings.image,
        "imagePullPolicy": "Always",
        "ports": container_ports(),
        "envFrom": env_from,
        "env": env,
        "resources": {
            "requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
            "limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"},
        },
        # Loading and warming the model on a cold GPU node: up to 5 minutes.
        "startupProbe": _probe(contract.READY_PATH, 5, 60),
        "readinessProbe": _probe(contract.READY_PATH, 5, 2),
        "livenessProbe": _probe(contract.LIVE_PATH, 10, 3),
        # Let endpoints and the ingress drop the pod before the service stops accepting work;
        # then SIGTERM drains in-flight requests (SHUTDOWN_GRACE_SECONDS).
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}},
        "securityContext": container_security(),
        "volumeMounts": api_mounts,
    }
    # One cache volume per pod (a PVC Kubernetes creates and deletes with the pod): Linode Block
    # Storage is ReadWriteOnce, so one shared claim would pin every replica to a single node.
    model_cache = {
        "name": "model-cache",
        "ephemeral": {
            "volumeClaimTemplate": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": settings.storage_class,
                    "resources": {"requests": {"storage": settings.model_cache_size}},
                },
            }
        },
    }
    pod_spec = {
        "serviceAccountName": SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "securityContext": pod_security(),
        "terminationGracePeriodSeconds": SHUTDOWN_GRACE_SECONDS + PRESTOP_SLEEP_SECONDS + 15,
        **pod_scheduling(settings),
        "initContainers": [prepare],
        "containers": [api],
        "volumes": [model_cache, {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}, *volumes],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(contract.APP),
        # No `replicas`: the HorizontalPodAutoscaler owns it.
        "spec": {
            "selector": {"matchLabels": dict(SELECTOR)},
            "revisionHistoryLimit": 5,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": dict(LABELS),
                    "annotations": {CONFIG_CHECKSUM_ANNOTATION: config_checksum(settings)},
                },
                "spec": pod_spec,
            },
        },
    }


def setup_objects(settings: AppSettings) -> list[Manifest]:
    """The namespace first, then what the pods need before they start."""
    return [namespace(), service_account(), config_map(settings)]
