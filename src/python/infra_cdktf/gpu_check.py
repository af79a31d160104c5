"""
The GPU check: a Job that must complete before the service's Deployment is applied. It asks for
one `nvidia.com/gpu`, so it runs only once a GPU node advertises one (device plugin up, GPU pool
scheduled), and it runs gpu_probe.py with the API image's own Python to check the node's driver
(R580+ for the image's CUDA 13). The inference stack waits for it (kubernetes_manifest `wait`);
a cluster without an advertised GPU, or with an old driver, fails the deploy loudly instead of
leaving the service Pending.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from infra_cdktf import contract, gpu_probe
from infra_cdktf.inference_manifests import (
    SERVICE_ACCOUNT,
    Manifest,
    container_security,
    pod_scheduling,
    pod_security,
)
from infra_cdktf.settings import AppSettings

PYTHON = "/app/venv/bin/python3.11"
COMPONENT_LABEL = {"app.kubernetes.io/component": "gpu-check"}
# Not the service's `app.kubernetes.io/name`: the Service, the PodDisruptionBudget and the HPA's
# per-pod metrics select the service's pods by it, and must not count the check's pod.
LABELS = {
    "app.kubernetes.io/name": f"{contract.APP}-gpu-check",
    "app.kubernetes.io/part-of": "bert-serve",
    **COMPONENT_LABEL,
}
# How long the check may take: a new GPU node (LKE autoscaler), the image pull (several GB) and
# the device plugin's registration.
DEADLINE_SECONDS = 20 * 60
# Argo CD applies the Deployment only after this wave is healthy (a Job: complete).
ARGO_SYNC_WAVE = {"argocd.argoproj.io/sync-wave": "-1"}


def probe_source() -> str:
    return Path(gpu_probe.__file__).read_text()


def job_name(settings: AppSettings) -> str:
    """A Job's pod template cannot change; a new image or probe is a new Job."""
    digest = hashlib.sha256(f"{settings.image}\n{probe_source()}".encode()).hexdigest()
    return f"gpu-check-{digest[:10]}"


def gpu_check_job(settings: AppSettings) -> Manifest:
    labels = dict(LABELS)
    container: dict[str, Any] = {
        "name": "gpu-check",
        "image": settings.image,
        # Always: a moved tag is pulled again (cached layers are reused).
        "imagePullPolicy": "Always",
        "command": [PYTHON, "-c", probe_source()],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi", contract.GPU_RESOURCE: "1"},
            "limits": {"cpu": "500m", "memory": "256Mi", contract.GPU_RESOURCE: "1"},
        },
        "securityContext": container_security(),
        # The probe's one line becomes the pod's termination message (kubectl describe).
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(settings),
            "namespace": contract.NAMESPACE,
            "labels": labels,
            "annotations": dict(ARGO_SYNC_WAVE),
        },
        "spec": {
            "backoffLimit": 1,
            "activeDeadlineSeconds": DEADLINE_SECONDS,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(),
                    "restartPolicy": "Never",
                    **pod_scheduling(settings),
                    "containers": [container],
                },
            },
        },
    }


def gpu_check_network_policy() -> Manifest:
    """The probe talks to no one: no traffic in or out of the check's pod."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "gpu-check", "namespace": contract.NAMESPACE, "labels": dict(LABELS)},
        "spec": {
            "podSelector": {"matchLabels": dict(LABELS)},
            "policyTypes": ["Ingress", "Egress"],
        },
    }
