"""
The inference service's Kubernetes objects, as plain manifests.

Plain dicts keep them in Kubernetes' own schema, so tests validate each one strictly with
kubernetes-validate, and the inference stack emits them unchanged (`kubernetes_manifest`).
"""

from __future__ import annotations

from typing import Any

from infra_cdktf import contract
from infra_cdktf.charts import GPU_TOLERATION
from infra_cdktf.settings import AppSettings

Manifest = dict[str, Any]
LABELS = {"app.kubernetes.io/name": contract.APP, "app.kubernetes.io/part-of": "bert-serve"}
SELECTOR = {"app.kubernetes.io/name": contract.APP}
CONFIG_MAP = "bert-inference-config"
API_KEY_SECRET = "bert-inference-api-key"
API_KEY_DIR = "/var/run/secrets/bert-serve"
SERVICE_ACCOUNT = "bert-inference"
RUN_AS = 10001
SHUTDOWN_GRACE_SECONDS = 30
PRESTOP_SLEEP_SECONDS = 10


def _metadata(name: str, namespace: str | None = contract.NAMESPACE) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(LABELS)}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def namespace() -> Manifest:
    meta = _metadata(contract.NAMESPACE, None)
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
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(CONFIG_MAP),
        "data": data,
    }


def service_account() -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(SERVICE_ACCOUNT),
        "automountServiceAccountToken": False,
    }


def _container_security() -> dict[str, Any]:
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
        "securityContext": _container_security(),
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
        "ports": [{"name": "http", "containerPort": contract.HTTP_PORT, "protocol": "TCP"}],
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
        "securityContext": _container_security(),
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
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": SHUTDOWN_GRACE_SECONDS + PRESTOP_SLEEP_SECONDS + 15,
        "tolerations": [GPU_TOLERATION],
        "initContainers": [prepare],
        "containers": [api],
        "volumes": [model_cache, {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}, *volumes],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(contract.APP),
        # No `replicas`: the HorizontalPodAutoscaler owns it.
        "spec": {
            "selector": {"matchLabels": dict(SELECTOR)},
            "revisionHistoryLimit": 5,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {"metadata": {"labels": dict(LABELS)}, "spec": pod_spec},
        },
    }


# Only the in-cluster Service carries it, so Prometheus scrapes each pod once, not once per Service.
SCRAPE_LABEL = {"bert-serve/scrape": "true"}


def service() -> Manifest:
    meta = _metadata(contract.APP)
    meta["labels"] |= SCRAPE_LABEL
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": dict(SELECTOR),
            # The container's port, so `loadkit smoke`'s port-forward default (8000) reaches it.
            "ports": [
                {
                    "name": "http",
                    "port": contract.HTTP_PORT,
                    "targetPort": "http",
                    "protocol": "TCP",
                }
            ],
        },
    }


def external_service() -> Manifest:
    """The seed's LoadBalancer (a NodeBalancer on Linode), next to the TLS ingress."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(contract.EXTERNAL_SERVICE),
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
            "selector": dict(SELECTOR),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def autoscaler(settings: AppSettings) -> Manifest:
    """CPU and memory as in the seed, plus the batcher's queue depth per pod."""

    def utilization(resource: str, percent: int) -> dict[str, Any]:
        target = {"type": "Utilization", "averageUtilization": percent}
        return {"type": "Resource", "resource": {"name": resource, "target": target}}

    queue_depth = {
        "type": "Pods",
        "pods": {
            "metric": {"name": contract.QUEUE_DEPTH_METRIC},
            "target": {"type": "AverageValue", "averageValue": str(settings.queue_depth_target)},
        },
    }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(contract.APP),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": contract.APP},
            "minReplicas": settings.min_replicas,
            "maxReplicas": settings.max_replicas,
            "metrics": [utilization("cpu", 70), utilization("memory", 80), queue_depth],
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 60,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
                },
            },
        },
    }


def disruption_budget() -> Manifest:
    # maxUnavailable, not minAvailable: with a single replica, minAvailable 1 would block every
    # node drain (LKE upgrades recycle nodes).
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(contract.APP),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(SELECTOR)}},
    }


def network_policy() -> Manifest:
    """Only the HTTP port comes in; only DNS and HTTPS (model download) go out."""

    def namespace_selector(name: str) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}

    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(contract.APP),
        "spec": {
            "podSelector": {"matchLabels": dict(SELECTOR)},
            "policyTypes": ["Ingress", "Egress"],
            # From anywhere on the HTTP port: the external LoadBalancer forwards client addresses.
            "ingress": [{"ports": [{"protocol": "TCP", "port": contract.HTTP_PORT}]}],
            "egress": [
                {
                    "to": [namespace_selector("kube-system")],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {"ports": [{"protocol": "TCP", "port": 443}]},
            ],
        },
    }


def all_objects(settings: AppSettings) -> list[Manifest]:
    """Every core object of the service, namespace first."""
    return [
        namespace(),
        service_account(),
        config_map(settings),
        deployment(settings),
        service(),
        external_service(),
        autoscaler(settings),
        disruption_budget(),
        network_policy(),
    ]
