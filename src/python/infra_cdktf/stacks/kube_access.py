"""Kubernetes and Helm provider settings from the cluster stack's kubeconfig output."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import Fn, Token
from cdktf_cdktf_provider_helm.provider import HelmProvider, HelmProviderKubernetes
from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider
from cdktf_cdktf_provider_random.provider import RandomProvider
from constructs import Construct


@dataclass(frozen=True)
class KubeAccess:
    """API server, CA and token, decoded in Terraform from LKE's base64 kubeconfig."""

    host: str
    cluster_ca_certificate: str
    token: str

    @classmethod
    def from_kubeconfig(cls, kubeconfig_base64: str) -> KubeAccess:
        config = Fn.yamldecode(Fn.base64decode(kubeconfig_base64))
        cluster = Fn.lookup(Fn.element(Fn.lookup(config, "clusters"), 0), "cluster")
        user = Fn.lookup(Fn.element(Fn.lookup(config, "users"), 0), "user")
        return cls(
            host=Token.as_string(Fn.lookup(cluster, "server")),
            cluster_ca_certificate=Fn.base64decode(
                Token.as_string(Fn.lookup(cluster, "certificate-authority-data"))
            ),
            token=Token.as_string(Fn.lookup(user, "token")),
        )


def configure_providers(scope: Construct, access: KubeAccess, *, helm: bool) -> None:
    KubernetesProvider(
        scope,
        "kubernetes",
        host=access.host,
        cluster_ca_certificate=access.cluster_ca_certificate,
        token=access.token,
    )
    if helm:
        HelmProvider(
            scope,
            "helm",
            kubernetes=HelmProviderKubernetes(
                host=access.host,
                cluster_ca_certificate=access.cluster_ca_certificate,
                token=access.token,
            ),
        )
    RandomProvider(scope, "random")
