"""
The inference service and what watches and fronts it: every object from inference_manifests,
monitoring_manifests and edge_manifests as a `kubernetes_manifest`, plus generated secrets (the
optional API key, the Prometheus ingress password) as typed Secrets.

Deployed after the platform stack: ClusterIssuers, ServiceMonitor and PrometheusRule need the
CRDs cert-manager and kube-prometheus-stack install.
"""

from __future__ import annotations

from cdktf import Fn, TerraformOutput, TerraformResourceLifecycle, TerraformStack
from cdktf_cdktf_provider_kubernetes.manifest import Manifest as ManifestResource
from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata
from cdktf_cdktf_provider_random.password import Password
from constructs import Construct

from infra_cdktf import contract, edge_manifests, inference_manifests, monitoring_manifests
from infra_cdktf.inference_manifests import Manifest
from infra_cdktf.settings import AppSettings
from infra_cdktf.stacks.kube_access import KubeAccess, configure_providers


def resource_id(manifest: Manifest) -> str:
    """Stable construct id: kind, namespace and name (unique in a cluster)."""
    meta = manifest["metadata"]
    parts = [manifest["kind"], meta.get("namespace", "cluster"), meta["name"]]
    return "-".join(parts).lower()


def all_manifests(settings: AppSettings) -> list[Manifest]:
    """Everything this stack applies as a manifest, namespace first."""
    return [
        *inference_manifests.all_objects(settings),
        *monitoring_manifests.all_objects(),
        *edge_manifests.all_objects(settings),
    ]


class InferenceStack(TerraformStack):
    def __init__(self, scope: Construct, id: str, settings: AppSettings, kubeconfig: str) -> None:
        super().__init__(scope, id)
        configure_providers(self, KubeAccess.from_kubeconfig(kubeconfig), helm=False)
        manifests = all_manifests(settings)
        namespace = ManifestResource(self, resource_id(manifests[0]), manifest=manifests[0])
        for manifest in manifests[1:]:
            ManifestResource(
                self,
                resource_id(manifest),
                manifest=manifest,
                depends_on=[namespace],
                # The autoscaler owns the replica count.
                computed_fields=["spec.replicas"] if manifest["kind"] == "Deployment" else None,
            )

        if settings.require_api_key:
            api_key = Password(self, "api-key", length=48, special=False)
            SecretV1(
                self,
                "api-key-secret",
                metadata=SecretV1Metadata(
                    name=inference_manifests.API_KEY_SECRET, namespace=contract.NAMESPACE
                ),
                data={"api-key": api_key.result},
                depends_on=[namespace],
            )
            TerraformOutput(self, "api_key", value=api_key.result, sensitive=True)

        prometheus_password = Password(self, "prometheus-password", length=32, special=False)
        SecretV1(
            self,
            "prometheus-basic-auth",
            metadata=SecretV1Metadata(
                name=edge_manifests.PROMETHEUS_BASIC_AUTH_SECRET,
                namespace=contract.MONITORING_NAMESPACE,
            ),
            type="nginx.org/htpasswd",
            data={"htpasswd": f"admin:{Fn.bcrypt(prometheus_password.result)}"},
            # bcrypt salts anew on every plan; keep the stored hash until the password changes.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["data"]),
        )
        TerraformOutput(
            self,
            "prometheus_password",
            value=prometheus_password.result,
            sensitive=True,
            description="Password of user 'admin' at https://prometheus.<domain>.",
        )
        for subdomain in ("inference", "grafana", "prometheus"):
            TerraformOutput(self, f"{subdomain}_url", value=f"https://{settings.host(subdomain)}")
