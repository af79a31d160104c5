"""
The LKE cluster with its GPU node pool. Its inputs are Terraform variables named as in the seed
(`linode_token`, `cluster_label`, `region`, `gpu_node_type`, `gpu_node_count`), so
`cdktf deploy cluster --var gpu_node_count=2` and `TF_VAR_*` work as they did there.
"""

from __future__ import annotations

from cdktf import (
    TerraformOutput,
    TerraformStack,
    TerraformVariable,
    TerraformVariableValidationConfig,
)
from constructs import Construct

from infra_cdktf.cluster_settings import ClusterSettings
from infra_cdktf.linode import (
    LinodeProvider,
    LkeAutoscaler,
    LkeCluster,
    LkeControlPlane,
    LkeNodePool,
)


class ClusterStack(TerraformStack):
    def __init__(self, scope: Construct, id: str, settings: ClusterSettings) -> None:
        super().__init__(scope, id)
        token = TerraformVariable(
            self,
            "linode_token",
            type="string",
            sensitive=True,
            nullable=False,
            description="Linode API token (Kubernetes read/write); never stored in this repo.",
        )
        label = TerraformVariable(
            self,
            "cluster_label",
            type="string",
            default=settings.cluster_label,
            description="Label of the LKE cluster.",
        )
        region = TerraformVariable(
            self, "region", type="string", default=settings.region, description="Linode region."
        )
        gpu_node_type = TerraformVariable(
            self,
            "gpu_node_type",
            type="string",
            default=settings.gpu_node_type,
            description="Linode plan of the GPU nodes (RTX 4000 Ada: g2-gpu-rtx4000a*).",
            validation=[
                TerraformVariableValidationConfig(
                    condition='can(regex("^g[0-9]+-gpu-", var.gpu_node_type)) && '
                    '!startswith(var.gpu_node_type, "g1-gpu-rtx6000-")',
                    error_message="gpu_node_type must be a GPU plan LKE deploys today, such as "
                    "g2-gpu-rtx4000a1-s (g1-gpu-rtx6000-* can no longer be deployed).",
                )
            ],
        )
        gpu_node_count = TerraformVariable(
            self,
            "gpu_node_count",
            type="number",
            default=settings.gpu_node_count,
            description="GPU nodes at creation; the autoscaler's lower bound.",
            validation=[
                TerraformVariableValidationConfig(
                    condition=f"var.gpu_node_count >= 1 && var.gpu_node_count <= "
                    f"{settings.gpu_autoscaler_max}",
                    error_message=f"gpu_node_count must be between 1 and the autoscaler's "
                    f"maximum ({settings.gpu_autoscaler_max}).",
                )
            ],
        )
        k8s_version = TerraformVariable(
            self,
            "k8s_version",
            type="string",
            default=settings.kubernetes_version,
            description="Kubernetes version (one LKE offers: linode-cli lke versions-list).",
        )
        ha_control_plane = TerraformVariable(
            self,
            "ha_control_plane",
            type="bool",
            default=settings.high_availability,
            description="Replicated control plane (LKE HA; billed extra).",
        )
        LinodeProvider(self, "linode", token=token.string_value)
        self.cluster = LkeCluster(
            self,
            "cluster",
            label=label.string_value,
            region=region.string_value,
            k8s_version=k8s_version.string_value,
            pools=[
                LkeNodePool(
                    type=gpu_node_type.string_value,
                    count=gpu_node_count.number_value,
                    autoscaler=LkeAutoscaler(
                        min=gpu_node_count.number_value,
                        max=settings.gpu_autoscaler_max,
                    ),
                    labels={"bert-serve/pool": "gpu"},
                )
            ],
            control_plane=LkeControlPlane(high_availability=ha_control_plane.boolean_value),
            tags=settings.tags,
        )
        TerraformOutput(
            self,
            "kubeconfig",
            value=self.cluster.kubeconfig,
            sensitive=True,
            description="Base64 kubeconfig: cdktf output --outputs-file, then base64 -d.",
        )
        TerraformOutput(self, "cluster_id", value=self.cluster.cluster_id)
        TerraformOutput(self, "api_endpoints", value=self.cluster.api_endpoints)

    @property
    def kubeconfig(self) -> str:
        return self.cluster.kubeconfig
