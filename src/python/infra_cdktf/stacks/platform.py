"""
Cluster add-ons, each a pinned Helm chart: NVIDIA device plugin and DCGM exporter, Prometheus +
Grafana (kube-prometheus-stack) with prometheus-adapter for the queue-depth autoscaling metric,
cert-manager, and F5's NGINX Ingress Controller. The Grafana admin password is generated here.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktf import ITerraformDependable, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_helm.release import Release
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata
from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata
from cdktf_cdktf_provider_random.password import Password
from constructs import Construct

from infra_cdktf import charts, contract
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

        prometheus = release(
            charts.KUBE_PROMETHEUS_STACK,
            charts.to_yaml(
                charts.kube_prometheus_stack_values(
                    settings.host("grafana"), settings.host("prometheus")
                )
            ),
            depends_on=[monitoring],
        )
        release(charts.NVIDIA_DEVICE_PLUGIN, charts.to_yaml(charts.device_plugin_values()))
        # Both create monitoring.coreos.com objects, whose CRDs come with Prometheus.
        release(
            charts.DCGM_EXPORTER,
            charts.to_yaml(charts.dcgm_exporter_values()),
            depends_on=[prometheus],
        )
        release(
            charts.PROMETHEUS_ADAPTER,
            charts.to_yaml(charts.prometheus_adapter_values()),
            depends_on=[prometheus],
        )
        release(charts.CERT_MANAGER, charts.to_yaml(charts.cert_manager_values()))
        release(charts.NGINX_INGRESS, charts.to_yaml(charts.nginx_ingress_values()))
