"""
Cluster add-ons, each a pinned Helm chart: NVIDIA device plugin and DCGM exporter (GPU pool),
Prometheus + Alertmanager + Grafana (kube-prometheus-stack) with prometheus-adapter for the
autoscaler's per-pod metrics, cert-manager, and F5's NGINX Ingress Controller (platform pool).
The Grafana admin password is generated here; the alert receiver's secret is a sensitive
Terraform variable stored in a Secret Alertmanager mounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cdktf import ITerraformDependable, TerraformOutput, TerraformStack, TerraformVariable
from cdktf_cdktf_provider_helm.release import Release
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata
from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata
from cdktf_cdktf_provider_random.password import Password
from constructs import Construct

from infra_cdktf import alerting, chart_values, charts, contract
from infra_cdktf.settings import AppSettings
from infra_cdktf.stacks.kube_access import KubeAccess, configure_providers


class PlatformStack(TerraformStack):
    def __init__(self, scope: Construct, id: str, settings: AppSettings, kubeconfig: str) -> None:
        super().__init__(scope, id)
        configure_providers(self, KubeAccess.from_kubeconfig(kubeconfig), helm=True)

        monitoring = NamespaceV1(
            self,
            "monitoring-namespace",
            metadata=NamespaceV1Metadata(
                name=contract.MONITORING_NAMESPACE,
                labels={"app.kubernetes.io/part-of": "bert-serve"},
            ),
        )
        password = Password(self, "grafana-admin-password", length=32, special=False)
        SecretV1(
            self,
            "grafana-admin",
            metadata=SecretV1Metadata(
                name=charts.GRAFANA_ADMIN_SECRET, namespace=contract.MONITORING_NAMESPACE
            ),
            data={"admin-user": "admin", "admin-password": password.result},
            depends_on=[monitoring],
        )
        TerraformOutput(
            self,
            "grafana_admin_password",
            value=password.result,
            sensitive=True,
            description="Grafana 'admin' password (also in Secret monitoring/grafana-admin).",
        )

        receiver = settings.receiver
        receiver_secret = TerraformVariable(
            self,
            receiver.terraform_variable,
            type="string",
            sensitive=True,
            nullable=False,
            description=f"Secret of the {receiver.kind} alert receiver (docs/DEPLOY.md).",
        )
        alert_secret = SecretV1(
            self,
            "alertmanager-receiver",
            metadata=SecretV1Metadata(
                name=alerting.RECEIVER_SECRET, namespace=contract.MONITORING_NAMESPACE
            ),
            data={receiver.secret_key: receiver_secret.string_value},
            depends_on=[monitoring],
        )

        releases: dict[str, Release] = {}

        def release(
            chart: charts.Chart,
            values: str,
            depends_on: Sequence[ITerraformDependable] | None = None,
        ) -> Release:
            return Release(
                self,
                chart.release,
                name=chart.release,
                repository=chart.repository,
                chart=chart.chart,
                version=chart.version,
                namespace=chart.namespace,
                create_namespace=chart.namespace != contract.MONITORING_NAMESPACE,
                values=[values],
                atomic=True,
                cleanup_on_fail=True,
                wait=True,
                timeout=900,
                depends_on=depends_on,
            )

        for chart, values in chart_values_by_release(settings).items():
            releases[chart.release] = release(
                chart,
                charts.to_yaml(values),
                # ServiceMonitors (DCGM exporter, cert-manager) need the Prometheus CRDs.
                depends_on=(
                    [monitoring, alert_secret]
                    if chart is charts.KUBE_PROMETHEUS_STACK
                    else [releases[charts.KUBE_PROMETHEUS_STACK.release]]
                ),
            )


def chart_values_by_release(settings: AppSettings) -> dict[charts.Chart, dict[str, Any]]:
    """Every chart with its values, kube-prometheus-stack first (its CRDs serve the others)."""
    return {
        charts.KUBE_PROMETHEUS_STACK: chart_values.kube_prometheus_stack_values(
            settings.host("grafana"), settings.host("prometheus"), settings.receiver
        ),
        charts.NVIDIA_DEVICE_PLUGIN: chart_values.device_plugin_values(),
        charts.DCGM_EXPORTER: chart_values.dcgm_exporter_values(),
        charts.PROMETHEUS_ADAPTER: chart_values.prometheus_adapter_values(),
        charts.CERT_MANAGER: chart_values.cert_manager_values(),
        charts.NGINX_INGRESS: chart_values.nginx_ingress_values(),
    }
