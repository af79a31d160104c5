"""Inputs of the LKE cluster stack, validated before anything is synthesized.

Defaults mirror the seed's Terraform variables, except the GPU plan (LKE no longer deploys
`g1-gpu-rtx6000-*` node pools) and the Kubernetes version (the seed's 1.33 is past upstream end of
life). A small CPU pool runs the platform (monitoring, ingress, cert-manager) so GPU nodes hold
only GPU work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# LKE labels: letters, digits and hyphens, 1-32 chars, starting and ending with a letter or digit.
_LABEL_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")
_RETIRED_GPU_PLAN_PREFIX = "g1-gpu-rtx6000-"

# Kubernetes minor versions still supported upstream, with their end-of-life dates
# (kubernetes.io/releases, read 2026-12-03: 1.33 ended 2026-06-28, 1.34 ended 2026-10-27).
# LKE must also offer the version: the cluster stack checks that against LKE's own list at plan
# time (data source linode_lke_versions). Remove a line when its date passes.
SUPPORTED_KUBERNETES_VERSIONS = {"1.35": "2027-02-28", "1.36": "2027-06-28"}
DEFAULT_KUBERNETES_VERSION = "1.35"


class ClusterSettingsError(ValueError):
    """A cluster input is invalid; the message names the input."""


@dataclass(frozen=True)
class ClusterSettings:
    """What the cluster stack needs; the Linode token is a sensitive variable, never here."""

    cluster_label: str = "bert-inference-cluster"
    region: str = "us-ord"
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    gpu_node_type: str = "g2-gpu-rtx4000a1-s"
    gpu_node_count: int = 1
    gpu_autoscaler_max: int = 3
    # The platform pool: Prometheus, Alertmanager, Grafana, the ingress controller (2 replicas),
    # cert-manager and prometheus-adapter fit on two 4-CPU / 8 GB shared nodes.
    platform_node_type: str = "g6-standard-4"
    platform_node_count: int = 2
    high_availability: bool = False
    tags: tuple[str, ...] = field(default=("bert-inference", "gpu"))

    def __post_init__(self) -> None:
        if not _LABEL_PATTERN.match(self.cluster_label):
            raise ClusterSettingsError(
                f"cluster_label {self.cluster_label!r} must be 1-32 letters, digits or hyphens, "
                "starting and ending with a letter or digit"
            )
        if self.gpu_node_type.startswith(_RETIRED_GPU_PLAN_PREFIX):
            raise ClusterSettingsError(
                f"gpu_node_type {self.gpu_node_type!r}: LKE no longer deploys RTX 6000 plans; "
                "use an RTX 4000 Ada plan such as g2-gpu-rtx4000a1-s"
            )
        if not self.gpu_node_type.startswith("g") or "-gpu-" not in self.gpu_node_type:
            raise ClusterSettingsError(
                f"gpu_node_type {self.gpu_node_type!r} is not a GPU plan (such as "
                "g2-gpu-rtx4000a1-s)"
            )
        if "-gpu-" in self.platform_node_type:
            raise ClusterSettingsError(
                f"platform_node_type {self.platform_node_type!r} is a GPU plan; the platform "
                "pool is for CPU work"
            )
        if self.kubernetes_version not in SUPPORTED_KUBERNETES_VERSIONS:
            raise ClusterSettingsError(
                f"k8s_version {self.kubernetes_version!r} is not a Kubernetes version supported "
                f"upstream; use one of {', '.join(SUPPORTED_KUBERNETES_VERSIONS)}"
            )
        if self.gpu_node_count < 1:
            raise ClusterSettingsError(f"gpu_node_count must be >= 1, got {self.gpu_node_count}")
        if self.platform_node_count < 1:
            raise ClusterSettingsError(
                f"platform_node_count must be >= 1, got {self.platform_node_count}"
            )
        if self.gpu_autoscaler_max < self.gpu_node_count:
            raise ClusterSettingsError(
                f"gpu_autoscaler_max ({self.gpu_autoscaler_max}) must be >= gpu_node_count "
                f"({self.gpu_node_count})"
            )
