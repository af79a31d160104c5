"""
The LKE cluster: an autoscaled GPU pool, tainted so only GPU work lands there, and a small CPU
pool for the platform. Its inputs are Terraform variables named as in the seed (`linode_token`,
`cluster_label`, `region`, `gpu_node_type`, `gpu_node_count`), so
`cdktf deploy cluster --var gpu_node_count=2` and `TF_VAR_*` work as they did there.
"""

from __future__ import annotations

from cdktf import (
    Precondition,
    TerraformOutput,
    TerraformStack,
    TerraformVariable,
    TerraformVariableValidationConfig,
)
from constructs import Construct

from infra_cdktf import contract
from infra_cdktf.cluster_settings import SUPPORTED_KUBERNETES_VERSIONS, ClusterSettings
from infra_cdktf.linode import (
    LinodeProvider,
    LkeAutoscaler,
    LkeCluster,
    LkeControlPlane,
    LkeNodePool,
    LkeTaint,
    LkeVersions,
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
        supported = ", ".join(f'"{version}"' for version in SUPPORTED_KUBERNETES_VERSIONS)
        k8s_version = TerraformVariable(
            self,
            "k8s_version",
            type="string",
            default=settings.kubernetes_version,
            description="Kubernetes version: supported upstream and offered by LKE "
            "(linode-cli lke versions-list).",
            validation=[
                TerraformVariableValidationConfig(
                    condition=f"contains([{supported}], var.k8s_version)",
                    error_message=f"k8s_version must be a Kubernetes version still supported "
                    f"upstream: one of {supported}.",
                )
            ],
        )
        platform_node_type = TerraformVariable(
            self,
            "platform_node_type",
            type="string",
            default=settings.platform_node_type,
            description="Linode plan of the CPU nodes that run monitoring, ingress and "
            "cert-manager.",
            validation=[
                TerraformVariableValidationConfig(
                    condition='!can(regex("-gpu-", var.platform_node_type))',
                    error_message="platform_node_type must be a CPU plan such as g6-standard-4.",
                )
            ],
        )
        platform_node_count = TerraformVariable(
            self,
            "platform_node_count",
            type="number",
            default=settings.platform_node_count,
            description="CPU nodes for the platform.",
            validation=[
                TerraformVariableValidationConfig(
                    condition="var.platform_node_count >= 1",
                    error_message="platform_node_count must be at least 1.",
                )
            ],
        )
        ha_control_plane = TerraformVariable(
            self,
            "ha_control_plane",
            type="bool",
            default=settings.high_availability,
            description="Replicated control plane (LKE HA; billed extra).",
        )
        LinodeProvider(self, "linode", token=token.string_value)
        offered = LkeVersions(self, "offered-versions")
        self.cluster = LkeCluster(
            self,
            "cluster",
            label=label.string_value,
            region=region.string_value,
            k8s_version=k8s_version.string_value,
            pools=[
                LkeNodePool(
                    type=platform_node_type.string_value,
                    count=platform_node_count.number_value,
                    labels={contract.POOL_LABEL: contract.PLATFORM_POOL},
                ),
                # No count: the autoscaler owns it (the pool starts at its minimum).
                LkeNodePool(
                    type=gpu_node_type.string_value,
                    autoscaler=LkeAutoscaler(
                        min=gpu_node_count.number_value,
                        max=settings.gpu_autoscaler_max,
                    ),
                    labels={contract.POOL_LABEL: contract.GPU_POOL},
                    taints=(LkeTaint(**contract.GPU_TAINT),),
                ),
            ],
            control_plane=LkeControlPlane(high_availability=ha_control_plane.boolean_value),
            tags=settings.tags,
            preconditions=(
                Precondition(
                    condition=f"${{contains({offered.version_ids_expression}, "
                    f"var.k8s_version)}}",
                    error_message="LKE does not offer this k8s_version now; pick one that "
                    "`linode-cli lke versions-list` lists.",
                ),
            ),
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
