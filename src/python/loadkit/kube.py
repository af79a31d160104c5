"""
Cluster checks through the Kubernetes API: GPU capacity of the nodes and pod status in a namespace.
"""

from __future__ import annotations

from typing import Any

from loadkit.checks import CheckResult

GPU_RESOURCE = "nvidia.com/gpu"


def kube_checks(
    kubeconfig: str | None, namespace: str, context: str | None = None
) -> list[CheckResult]:
    """
    Node GPU capacity and pod readiness; connection problems become failed checks, not crashes.
    """
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    try:
        api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context
        )
    except (ConfigException, OSError) as error:
        return [CheckResult("kubernetes access", False, [f"cannot load kubeconfig: {error}"])]
    core = client.CoreV1Api(api_client)
    try:
        nodes = core.list_node().items
        pods = core.list_namespaced_pod(namespace).items
    except (ApiException, HTTPError, OSError) as error:
        return [
            CheckResult("kubernetes access", False, [f"the API server did not answer: {error}"])
        ]
    return [_gpu_capacity(nodes), _pods_ready(pods, namespace)]


def _gpu_capacity(nodes: list[Any]) -> CheckResult:
    capacity = {
        node.metadata.name: int((node.status.capacity or {}).get(GPU_RESOURCE, "0"))
        for node in nodes
    }
    total = sum(capacity.values())
    reasons = []
    if total == 0:
        reasons.append(f"no node advertises {GPU_RESOURCE}: is the NVIDIA device plugin running?")
    return CheckResult(
        "gpu capacity on nodes", total > 0, reasons, {"total": total, "by_node": capacity}
    )


def _pods_ready(pods: list[Any], namespace: str) -> CheckResult:
    details: dict[str, Any] = {}
    reasons = []
    for pod in pods:
        statuses = pod.status.container_statuses or []
        ready = pod.status.phase == "Running" and bool(statuses) and all(s.ready for s in statuses)
        restarts = sum(s.restart_count for s in statuses)
        details[pod.metadata.name] = {
            "phase": pod.status.phase,
            "ready": ready,
            "restarts": restarts,
        }
        if not ready:
            waiting = [s.state.waiting.reason for s in statuses if s.state and s.state.waiting]
            why = f" ({', '.join(waiting)})" if waiting else ""
            reasons.append(f"pod {pod.metadata.name} is {pod.status.phase}, not ready{why}")
    if not pods:
        reasons.append(f"no pods in namespace {namespace}")
    return CheckResult(f"pods in {namespace}", not reasons, reasons, details)
