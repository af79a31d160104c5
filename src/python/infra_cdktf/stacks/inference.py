"""
The inference service and what watches and fronts it: every object from inference_manifests,
inference_network, gpu_check, monitoring_manifests and edge_manifests as a `kubernetes_manifest`,
plus generated or given secrets (the optional API key, the registry pull secret, the Prometheus
password) as typed Secrets.

Deployed after the platform stack: ClusterIssuers, VirtualServers, ServiceMonitor and
PrometheusRule need the CRDs cert-manager, the ingress controller and kube-prometheus-stack
install. The Deployment is applied only after the GPU check Job has completed.
"""

from __future__ import annotations

from cdktf import (
    Fn,
    ITerraformDependable,
    TerraformOutput,
    TerraformResourceLifecycle,
    TerraformStack,
    TerraformVariable,
)
from cdktf_cdktf_provider_kubernetes.manifest import (
    Manifest as ManifestResource,
)
from cdktf_cdktf_provider_kubernetes.manifest import (
    ManifestTimeouts,
    ManifestWait,
    ManifestWaitCondition,
)
from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata
from cdktf_cdktf_provider_random.password import Password
from constructs import Construct

from infra_cdktf import (
    contract,
    edge_manifests,
    gpu_check,
    inference_manifests,
    inference_network,
    monitoring_manifests,
)
from infra_cdktf.inference_manifests import Manifest
from infra_cdktf.settings import AppSettings
from infra_cdktf.stacks.kube_access import KubeAccess, configure_providers

# Longer than the Job's own deadline, so the Job's failure, not Terraform's clock, ends the wait.
GPU_CHECK_TIMEOUT = f"{gpu_check.DEADLINE_SECONDS // 60 + 5}m"


def resource_id(manifest: Manifest) -> str:
    """Stable construct id: kind, namespace and name (unique in a cluster)."""
    meta = manifest["metadata"]
    parts = [manifest["kind"], meta.get("namespace", "cluster"), meta["name"]]
    return "-".join(parts).lower()


def all_manifests(settings: AppSettings) -> list[Manifest]:
    """Everything this stack applies as a manifest, namespace first."""
    return [
        *inference_manifests.setup_objects(settings),
        gpu_check.gpu_check_network_policy(),
        gpu_check.gpu_check_job(settings),
        inference_manifests.deployment(settings),
        *inference_network.all_objects(settings),
        *monitoring_manifests.all_objects(),
        *edge_manifests.all_objects(settings),
    ]


class InferenceStack(TerraformStack):
    def __init__(self, scope: Construct, id: str, settings: AppSettings, kubeconfig: str) -> None:
        super().__init__(scope, id)
        configure_providers(self, KubeAccess.from_kubeconfig(kubeconfig), helm=False)
        manifests = all_manifests(settings)
        namespace = ManifestResource(self, resource_id(manifests[0]), manifest=manifests[0])
        before_pods: list[ITerraformDependable] = [namespace]
        if settings.registry_username:
            before_pods.append(self._registry_secret(settings, namespace))
        if settings.require_api_key:
            before_pods.append(self._api_key_secret(namespace))

        # Applied in order; the Deployment waits for everything before it (the GPU check Job too).
        applied: list[ManifestResource] = []
        for manifest in manifests[1:]:
            kind = manifest["kind"]
            depends_on: list[ITerraformDependable] = list(before_pods)
            if kind in ("Job", "Deployment"):
                depends_on += applied
            applied.append(
                ManifestResource(
                    self,
                    resource_id(manifest),
                    manifest=manifest,
                    depends_on=depends_on,
                    # The autoscaler owns the replica count.
                    computed_fields=["spec.replicas"] if kind == "Deployment" else None,
                    # The GPU check must complete before the service is deployed.
                    wait=(
                        ManifestWait(
                            condition=[ManifestWaitCondition(type="Complete", status="True")]
                        )
                        if kind == "Job"
                        else None
                    ),
                    timeouts=ManifestTimeouts(create=GPU_CHECK_TIMEOUT) if kind == "Job" else None,
                )
            )
        self._prometheus_password()
        for subdomain in ("inference", "grafana", "prometheus"):
            TerraformOutput(self, f"{subdomain}_url", value=f"https://{settings.host(subdomain)}")

    def _api_key_secret(self, namespace: ManifestResource) -> SecretV1:
        api_key = Password(self, "api-key", length=48, special=False)
        TerraformOutput(self, "api_key", value=api_key.result, sensitive=True)
        return SecretV1(
            self,
            "api-key-secret",
            metadata=SecretV1Metadata(
                name=inference_manifests.API_KEY_SECRET, namespace=contract.NAMESPACE
            ),
            data={"api-key": api_key.result},
            depends_on=[namespace],
        )

    def _registry_secret(self, settings: AppSettings, namespace: ManifestResource) -> SecretV1:
        """Pull credentials for a private registry; the password never leaves Terraform."""
        password = TerraformVariable(
            self,
            "registry_password",
            type="string",
            sensitive=True,
            nullable=False,
            description=f"Password or token of {settings.registry_username} at "
            f"{settings.registry_server} (image pulls).",
        )
        user = settings.registry_username
        docker_config = {
            "auths": {
                settings.registry_server: {
                    "username": user,
                    "password": password.string_value,
                    "auth": Fn.base64encode(f"{user}:{password.string_value}"),
                }
            }
        }
        return SecretV1(
            self,
            "registry-secret",
            metadata=SecretV1Metadata(
                name=inference_manifests.REGISTRY_SECRET, namespace=contract.NAMESPACE
            ),
            type="kubernetes.io/dockerconfigjson",
            data={".dockerconfigjson": Fn.jsonencode(docker_config)},
            depends_on=[namespace],
        )

    def _prometheus_password(self) -> None:
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
