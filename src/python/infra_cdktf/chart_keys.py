"""
Values keys read in each pinned chart version's own values.yaml and templates, and where. The
values this app emits may use only these keys (chart_keys_test.py), and the list is keyed by
chart version: bump a pin in charts.py and the tests fail until this file has a list for the new
version, checked against that version's sources.

A key ending in `/*` is a subtree the chart passes through whole (a node selector, an affinity,
the Alertmanager configuration): its inner keys belong to Kubernetes or the upstream program, not
to the chart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# (chart, version) -> {key path: where it was checked}
CHECKED_KEYS: dict[tuple[str, str], dict[str, str]] = {
    ("nvidia-device-plugin", "0.20.0"): {
        # deployments/helm/nvidia-device-plugin/values.yaml and
        # templates/daemonset-device-plugin.yml (`with .Values.affinity` / `.tolerations`).
        "affinity/*": "values.yaml `affinity` (default: NFD / nvidia.com/gpu.present terms)",
        "tolerations": "values.yaml `tolerations`",
        "priorityClassName": "values.yaml `priorityClassName`",
    },
    ("dcgm-exporter", "4.8.2"): {
        # deployment/values.yaml, templates/daemonset.yaml, templates/service-monitor.yaml.
        "serviceMonitor/enabled": "values.yaml serviceMonitor.enabled",
        "serviceMonitor/interval": "values.yaml serviceMonitor.interval",
        "serviceMonitor/honorLabels": "values.yaml serviceMonitor.honorLabels",
        "nodeSelector/*": "values.yaml nodeSelector (daemonset.yaml `if .Values.nodeSelector`)",
        "tolerations": "values.yaml tolerations (default: control-plane only)",
    },
    ("kube-prometheus-stack", "88.5.3"): {
        # charts/kube-prometheus-stack/values.yaml (subcharts: kube-state-metrics 8.4.0,
        # grafana 12.11.1 from grafana-community/helm-charts).
        "fullnameOverride": "values.yaml fullnameOverride",
        "prometheusOperator/nodeSelector/*": "values.yaml prometheusOperator.nodeSelector",
        "prometheusOperator/admissionWebhooks/patch/nodeSelector/*": (
            "values.yaml prometheusOperator.admissionWebhooks.patch.nodeSelector"
        ),
        "prometheus/prometheusSpec/ruleSelectorNilUsesHelmValues": "values.yaml",
        "prometheus/prometheusSpec/serviceMonitorSelectorNilUsesHelmValues": "values.yaml",
        "prometheus/prometheusSpec/podMonitorSelectorNilUsesHelmValues": "values.yaml",
        "prometheus/prometheusSpec/retention": "values.yaml (default 10d)",
        "prometheus/prometheusSpec/externalUrl": "values.yaml",
        "prometheus/prometheusSpec/nodeSelector/*": "values.yaml",
        "prometheus/prometheusSpec/storageSpec/*": "values.yaml (a PVC template)",
        "alertmanager/config/*": "values.yaml alertmanager.config (Alertmanager's own format)",
        "alertmanager/alertmanagerSpec/nodeSelector/*": "values.yaml",
        "alertmanager/alertmanagerSpec/secrets": (
            "values.yaml: mounted into /etc/alertmanager/secrets/"
        ),
        "kube-state-metrics/nodeSelector/*": "kube-state-metrics 8.4.0 values.yaml nodeSelector",
        "grafana/fullnameOverride": "grafana 12.11.1 templates/_helpers.tpl fullname",
        "grafana/nodeSelector/*": "grafana 12.11.1 values.yaml nodeSelector",
        "grafana/admin/existingSecret": "grafana 12.11.1 values.yaml admin.existingSecret",
        "grafana/admin/userKey": "grafana 12.11.1 values.yaml admin.userKey",
        "grafana/admin/passwordKey": "grafana 12.11.1 values.yaml admin.passwordKey",
        "grafana/grafana.ini/server/root_url": "grafana 12.11.1 values.yaml grafana.ini.server",
        "grafana/sidecar/dashboards/enabled": "grafana 12.11.1 values.yaml",
        "grafana/sidecar/dashboards/label": "grafana 12.11.1 values.yaml",
        "grafana/sidecar/dashboards/labelValue": "grafana 12.11.1 values.yaml",
        "grafana/sidecar/dashboards/searchNamespace": "grafana 12.11.1 values.yaml",
    },
    ("prometheus-adapter", "5.3.0"): {
        # charts/prometheus-adapter/values.yaml; templates/custom-metrics-apiservice.yaml
        # registers custom.metrics.k8s.io when rules.default or rules.custom is set.
        "prometheus/url": "values.yaml prometheus.url",
        "prometheus/port": "values.yaml prometheus.port",
        "nodeSelector/*": "values.yaml nodeSelector",
        "rules/default": "values.yaml rules.default",
        "rules/custom": "values.yaml rules.custom (adapter rule format)",
    },
    ("cert-manager", "v1.21.1"): {
        # deploy/charts/cert-manager/values.yaml; every component template merges
        # global.nodeSelector with its own.
        "crds/enabled": "values.yaml crds.enabled",
        "global/nodeSelector/*": "values.yaml global.nodeSelector",
        "prometheus/enabled": "values.yaml prometheus.enabled",
        "prometheus/servicemonitor/enabled": "values.yaml prometheus.servicemonitor.enabled",
    },
    ("nginx-ingress", "2.6.4"): {
        # charts/nginx-ingress/values.yaml and templates/controller-deployment.yaml (app 5.5.4).
        "controller/ingressClass/name": "values.yaml",
        "controller/ingressClass/create": "values.yaml",
        "controller/ingressClass/setAsDefaultIngress": "values.yaml",
        "controller/service/type": "values.yaml",
        "controller/service/externalTrafficPolicy": "values.yaml",
        "controller/replicaCount": "values.yaml",
        "controller/nodeSelector/*": "controller-deployment.yaml `.Values.controller.nodeSelector`",
        "controller/enableCustomResources": "values.yaml (VirtualServer CRDs)",
        "controller/enableCertManager": "values.yaml -> -enable-cert-manager",
    },
}


def value_keys(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Every key path of a values document; lists and scalars end a path."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield path
            yield from value_keys(value, f"{path}/")
        else:
            yield path


def unchecked_keys(chart: str, version: str, values: dict[str, Any]) -> list[str]:
    """The value paths not covered by the checked list of this chart version."""
    checked = CHECKED_KEYS.get((chart, version))
    if checked is None:
        return [f"no checked-key list for {chart} {version}: read its values.yaml, add one"]
    exact = {key for key in checked if not key.endswith("/*")}
    subtrees = {key.removesuffix("/*") for key in checked if key.endswith("/*")}

    def covered(path: str) -> bool:
        if path in exact or path in subtrees:
            return True
        if any(path.startswith(f"{tree}/") for tree in subtrees):
            return True
        # An intermediate map on the way to a checked key.
        return any(key.startswith(f"{path}/") for key in checked)

    return [path for path in value_keys(values) if not covered(path)]
