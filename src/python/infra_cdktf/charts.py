"""
The cluster add-ons, as Helm charts pinned to exact versions.

Versions are pinned so a deploy today and one next month install the same thing. Each pin names
the day that chart version was tagged upstream; `chart_keys.py` lists, per chart version, the
values keys this app sets and that were read in that version's values.yaml or templates, so a
bump fails the tests until someone reads the new version (docs/DEPLOY.md, "Changing the app").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from infra_cdktf import contract


@dataclass(frozen=True)
class Chart:
    release: str
    repository: str
    chart: str
    version: str
    namespace: str
    # The day the chart version was tagged upstream (its repository's git tag).
    released: str


NVIDIA_DEVICE_PLUGIN = Chart(
    "nvidia-device-plugin",
    "https://nvidia.github.io/k8s-device-plugin",
    "nvidia-device-plugin",
    "0.20.0",
    contract.GPU_NAMESPACE,
    "2026-08-19",
)
DCGM_EXPORTER = Chart(
    "dcgm-exporter",
    "https://nvidia.github.io/dcgm-exporter/helm-charts",
    "dcgm-exporter",
    "4.8.2",
    contract.GPU_NAMESPACE,
    "2026-05-06",
)
KUBE_PROMETHEUS_STACK = Chart(
    "kube-prometheus-stack",
    "https://prometheus-community.github.io/helm-charts",
    "kube-prometheus-stack",
    "88.5.3",
    contract.MONITORING_NAMESPACE,
    "2026-08-21",
)
PROMETHEUS_ADAPTER = Chart(
    "prometheus-adapter",
    "https://prometheus-community.github.io/helm-charts",
    "prometheus-adapter",
    "5.3.0",
    contract.MONITORING_NAMESPACE,
    "2026-02-19",
)
CERT_MANAGER = Chart(
    "cert-manager",
    "https://charts.jetstack.io",
    "cert-manager",
    "v1.21.1",
    contract.CERT_MANAGER_NAMESPACE,
    "2026-07-29",
)
# F5 NGINX Ingress Controller 5.5.4 (maintained by F5/NGINX); the community ingress-nginx is
# retired.
NGINX_INGRESS = Chart(
    "nginx-ingress",
    "https://helm.nginx.com/stable",
    "nginx-ingress",
    "2.6.4",
    contract.INGRESS_NAMESPACE,
    "2026-07-16",
)
ALL_CHARTS = (
    NVIDIA_DEVICE_PLUGIN,
    DCGM_EXPORTER,
    KUBE_PROMETHEUS_STACK,
    PROMETHEUS_ADAPTER,
    CERT_MANAGER,
    NGINX_INGRESS,
)

INGRESS_CLASS = "nginx"
GRAFANA_SERVICE = "grafana"
GRAFANA_ADMIN_SECRET = "grafana-admin"
PROMETHEUS_SERVICE = "kube-prometheus-prometheus"
PROMETHEUS_PORT = 9090
DASHBOARD_LABEL = "grafana_dashboard"
# Pod labels the charts give their pods (selectors in kube-prometheus-stack 88.5.3
# templates/prometheus/podDisruptionBudget.yaml; nginx-ingress 2.6.4 templates/_helpers.tpl
# "nginx-ingress.selectorLabels" with the chart name), which the service's NetworkPolicy admits.
PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus"}
INGRESS_POD_LABELS = {"app.kubernetes.io/name": "nginx-ingress"}


class PlainDumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no type stubs
    """No `&id001` anchors where two objects share a dict: plain YAML, as people write it."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def to_yaml(values: dict[str, Any]) -> str:
    return str(yaml.dump(values, Dumper=PlainDumper, sort_keys=True))
