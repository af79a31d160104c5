"""
How traffic and load reach the service's pods: the in-cluster Service (the edge's upstream and
Prometheus' scrape target), the NetworkPolicy, the HorizontalPodAutoscaler and the disruption
budget. There is no public Service: the only way in from outside is the ingress controller's
HTTPS endpoint (edge_manifests).
"""

from __future__ import annotations

from typing import Any

from infra_cdktf import charts, contract
from infra_cdktf.chart_values import ADAPTED_METRICS
from infra_cdktf.inference_manifests import SELECTOR, Manifest, metadata
from infra_cdktf.settings import AppSettings

# Only the in-cluster Service carries it, so Prometheus scrapes each pod once.
SCRAPE_LABEL = {"bert-serve/scrape": "true"}


def metrics_port_name() -> str:
    """The Service port Prometheus scrapes: its own when the service has a metrics port."""
    return "http" if contract.METRICS_PORT == contract.HTTP_PORT else "metrics"


def service() -> Manifest:
    meta = metadata(contract.APP)
    meta["labels"] |= SCRAPE_LABEL
    ports = [{"name": "http", "port": contract.HTTP_PORT, "targetPort": "http", "protocol": "TCP"}]
    if contract.METRICS_PORT != contract.HTTP_PORT:
        ports.append(
            {
                "name": "metrics",
                "port": contract.METRICS_PORT,
                "targetPort": "metrics",
                "protocol": "TCP",
            }
        )
    # Port 8000 as in the container, so `loadkit smoke`'s port-forward default reaches it.
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"type": "ClusterIP", "selector": dict(SELECTOR), "ports": ports},
    }


def _peer(namespace: str, pod_labels: dict[str, str]) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "podSelector": {"matchLabels": dict(pod_labels)},
    }


def network_policy() -> Manifest:
    """
    In: the HTTP port from the ingress controller's pods only, the metrics port from
    Prometheus' pods only (one port today, contract.METRICS_PORT). Out: DNS, and HTTPS for the
    model download.
    """
    ingress_controller = _peer(contract.INGRESS_NAMESPACE, charts.INGRESS_POD_LABELS)
    prometheus = _peer(contract.MONITORING_NAMESPACE, charts.PROMETHEUS_POD_LABELS)
    http = {"protocol": "TCP", "port": contract.HTTP_PORT}
    metrics = {"protocol": "TCP", "port": contract.METRICS_PORT}
    if contract.METRICS_PORT == contract.HTTP_PORT:
        rules = [{"from": [ingress_controller, prometheus], "ports": [http]}]
    else:
        rules = [
            {"from": [ingress_controller], "ports": [http]},
            {"from": [prometheus], "ports": [metrics]},
        ]
    dns = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(contract.APP),
        "spec": {
            "podSelector": {"matchLabels": dict(SELECTOR)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": rules,
            "egress": [
                {
                    "to": [dns],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {"ports": [{"protocol": "TCP", "port": 443}]},
            ],
        },
    }


def autoscaler(settings: AppSettings) -> Manifest:
    """
    Work per pod, the only signals that follow load on a GPU model server: the batcher's queue
    and the requests in flight. Both come from prometheus-adapter (installed by the platform
    stack), so every metric the HPA names exists and it scales down as well as up.
    """
    targets = {
        contract.QUEUE_DEPTH_METRIC: settings.queue_depth_target,
        contract.ACTIVE_REQUESTS_METRIC: settings.active_requests_target,
    }
    assert set(targets) == set(ADAPTED_METRICS)
    metrics = [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": name},
                "target": {"type": "AverageValue", "averageValue": str(target)},
            },
        }
        for name, target in targets.items()
    ]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(contract.APP),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": contract.APP},
            "minReplicas": settings.min_replicas,
            "maxReplicas": settings.max_replicas,
            "metrics": metrics,
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
        "metadata": metadata(contract.APP),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(SELECTOR)}},
    }


def all_objects(settings: AppSettings) -> list[Manifest]:
    return [service(), network_policy(), autoscaler(settings), disruption_budget()]
