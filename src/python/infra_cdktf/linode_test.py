"""The hand-written Linode constructs synthesize the attributes they are given (not `{}`)."""

from __future__ import annotations

import json

import pytest
from cdktf import TerraformStack, Testing

from infra_cdktf.linode import (
    LinodeProvider,
    LkeAutoscaler,
    LkeCluster,
    LkeControlPlane,
    LkeNodePool,
    LkeTaint,
)


def _synth(**cluster: object) -> dict[str, object]:
    stack = TerraformStack(Testing.app(), "test")
    LinodeProvider(stack, "linode", token="${var.token}")
    LkeCluster(stack, "cluster", **cluster)  # type: ignore[arg-type]
    synthesized: dict[str, object] = json.loads(Testing.synth(stack))
    return synthesized


def test_cluster_and_provider_synthesize_every_attribute() -> None:
    synthesized = _synth(
        label="c",
        region="us-ord",
        k8s_version="1.33",
        pools=[
            LkeNodePool(type="g6-standard-4", count=2, labels={"pool": "cpu"}),
            LkeNodePool(
                type="g2-gpu-rtx4000a1-s",
                autoscaler=LkeAutoscaler(min=2, max=4),
                labels={"pool": "gpu"},
                taints=(LkeTaint(key="nvidia.com/gpu", value="present", effect="NoSchedule"),),
            ),
        ],
        control_plane=LkeControlPlane(high_availability=True),
        tags=("a",),
    )
    resource = synthesized["resource"]["linode_lke_cluster"]["cluster"]  # type: ignore[index]
    assert resource["pool"] == [
        {"type": "g6-standard-4", "count": 2, "labels": {"pool": "cpu"}},
        {
            "type": "g2-gpu-rtx4000a1-s",
            "autoscaler": {"min": 2, "max": 4},
            "labels": {"pool": "gpu"},
            "taint": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        },
    ]
    assert resource["control_plane"] == {"high_availability": True}
    assert resource["tags"] == ["a"]
    assert synthesized["provider"] == {"linode": [{"token": "${var.token}"}]}
    required = synthesized["terraform"]["required_providers"]  # type: ignore[index]
    assert required["linode"] == {"source": "linode/linode", "version": "~> 3.0"}


def test_a_cluster_needs_a_node_pool() -> None:
    with pytest.raises(ValueError, match="node pool"):
        _synth(label="c", region="us-ord", k8s_version="1.33", pools=[])


def test_a_pool_has_a_count_or_an_autoscaler_never_both() -> None:
    with pytest.raises(ValueError, match="either a fixed count or an autoscaler"):
        LkeNodePool(type="g6-standard-4", count=2, autoscaler=LkeAutoscaler(min=1, max=3))
    with pytest.raises(ValueError, match="either a fixed count or an autoscaler"):
        LkeNodePool(type="g6-standard-4")
