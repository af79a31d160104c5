"""
How the service is watched in the cluster: a ServiceMonitor (Prometheus scrapes /metrics), the
recording and alert rules as a PrometheusRule, and the dashboard as a ConfigMap Grafana's sidecar
loads.
"""

from __future__ import annotations

from infra_cdktf import assets, charts, contract
from infra_cdktf.inference_manifests import LABELS, Manifest
from infra_cdktf.inference_network import SCRAPE_LABEL, metrics_port_name


def service_monitor() -> Manifest:
    # The job label becomes the Service's name, `bert-inference`, which the rules select on.
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": contract.APP, "namespace": contract.NAMESPACE, "labels": dict(LABELS)},
        "spec": {
            "selector": {"matchLabels": dict(SCRAPE_LABEL)},
            "namespaceSelector": {"matchNames": [contract.NAMESPACE]},
            "endpoints": [
                {"port": metrics_port_name(), "path": contract.METRICS_PATH, "interval": "15s"}
            ],
        },
    }


def prometheus_rule() -> Manifest:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": contract.APP, "namespace": contract.NAMESPACE, "labels": dict(LABELS)},
        "spec": assets.prometheus_rules(),
    }


def dashboard_config_map() -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "bert-inference-dashboard",
            "namespace": contract.MONITORING_NAMESPACE,
            "labels": {**LABELS, charts.DASHBOARD_LABEL: "1"},
        },
        "data": {"bert-inference.json": assets.dashboard_json()},
    }


def all_objects() -> list[Manifest]:
    return [service_monitor(), prometheus_rule(), dashboard_config_map()]
