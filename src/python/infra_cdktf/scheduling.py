"""
Where pods run. GPU nodes carry the `nvidia.com/gpu=present:NoSchedule` taint (cluster stack), so
only pods that tolerate it land there: the inference service, the GPU check, and the two GPU
DaemonSets (device plugin, DCGM exporter). Everything else is pinned to the platform pool, so a
GPU node that serves nothing holds nothing and LKE's autoscaler can remove it.
"""

from __future__ import annotations

from typing import Any

from infra_cdktf import contract

GPU_TOLERATION = {
    "key": contract.GPU_TAINT["key"],
    "operator": "Exists",
    "effect": contract.GPU_TAINT["effect"],
}
GPU_NODE_SELECTOR = {contract.POOL_LABEL: contract.GPU_POOL}
PLATFORM_NODE_SELECTOR = {contract.POOL_LABEL: contract.PLATFORM_POOL}


def gpu_node_affinity() -> dict[str, Any]:
    """Required node affinity to the GPU pool, in the form of the device plugin chart's value."""
    term = {
        "matchExpressions": [
            {"key": contract.POOL_LABEL, "operator": "In", "values": [contract.GPU_POOL]}
        ]
    }
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
    }
