"""Inputs of the LKE cluster stack, validated before anything is synthesized.

Defaults mirror the seed's Terraform variables, except the GPU plan: LKE no longer deploys
`g1-gpu-rtx6000-*` node pools, so the default is an RTX 4000 Ada plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# LKE labels: letters, digits and hyphens, 1-32 chars, starting and ending with a letter or digit.
_LABEL_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")
_RETIRED_GPU_PLAN_PREFIX = "g1-gpu-rtx6000-"


class ClusterSettingsError(ValueError):
    """A cluster input is invalid; the message names the input."""


@dataclass(frozen=True)
class ClusterSettings:
    """What the cluster stack needs; the Linode token is a sensitive variable, never here."""

    cluster_label: str = "bert-inference-cluster"
    region: str = "us-ord"
    kubernetes_version: str = "1.33"
    gpu_node_type: str = "g2-gpu-rtx4000a1-s"
    gpu_node_count: int = 1
    gpu_autoscaler_max: int = 3
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
        if not self.gpu_node_type.startswith("g"):
            raise ClusterSettingsError(
                f"gpu_node_type {self.gpu_node_type!r} is not a GPU plan (GPU plans start with 'g')"
            )
        if self.gpu_node_count < 1:
            raise ClusterSettingsError(f"gpu_node_count must be >= 1, got {self.gpu_node_count}")
        if self.gpu_autoscaler_max < self.gpu_node_count:
            raise ClusterSettingsError(
                f"gpu_autoscaler_max ({self.gpu_autoscaler_max}) must be >= gpu_node_count "
                f"({self.gpu_node_count})"
            )
