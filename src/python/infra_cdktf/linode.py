"""
Typed constructs for the Linode Terraform provider and `linode_lke_cluster`.

No prebuilt CDKTF binding exists for Linode, so these are written by hand over cdktf's
`TerraformProvider` / `TerraformResource`. Attributes are emitted by `_synthesize_attributes`
(the underscore matters: jsii calls this name; without it the resource synthesizes as `{}`).
Only the attributes this project uses are modelled; see the provider's documentation for the rest:
https://registry.terraform.io/providers/linode/linode/latest/docs/resources/lke_cluster
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cdktf import (
    IResolvable,
    Precondition,
    TerraformDataSource,
    TerraformProvider,
    TerraformResource,
    TerraformResourceLifecycle,
)
from constructs import Construct

LINODE_PROVIDER_SOURCE = "linode/linode"
LINODE_PROVIDER_VERSION = "~> 3.0"


class LinodeProvider(TerraformProvider):
    """The `linode` provider; the token is a (sensitive) variable reference, never a literal."""

    def __init__(self, scope: Construct, id: str, *, token: str) -> None:
        super().__init__(
            scope,
            id,
            terraform_resource_type="linode",
            terraform_provider_source=LINODE_PROVIDER_SOURCE,
            terraform_generator_metadata={
                "provider_name": "linode",
                "provider_version_constraint": LINODE_PROVIDER_VERSION,
            },
        )
        self._token = token

    def _synthesize_attributes(self) -> dict[str, Any]:
        return {"token": self._token}


@dataclass(frozen=True)
class LkeAutoscaler:
    """Bounds of LKE's cluster autoscaler for one node pool."""

    # Numbers or Terraform tokens (cdktf encodes a number token as a float).
    min: float
    max: float

    def to_terraform(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max}


@dataclass(frozen=True)
class LkeTaint:
    """A Kubernetes taint LKE puts on every node of a pool (provider 3.x: `taint` blocks)."""

    key: str
    value: str
    effect: str  # NoSchedule | PreferNoSchedule | NoExecute

    def to_terraform(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "effect": self.effect}


@dataclass(frozen=True)
class LkeNodePool:
    """
    A node pool: plan (`type`), a fixed node count or an autoscaler, node labels and taints.

    An autoscaled pool has no `count`: in provider 3.x `count` is optional and computed, the
    pool starts at the autoscaler's minimum, and a count in the configuration would be set back
    on every apply, undoing what the autoscaler did.
    """

    type: str
    count: float | None = None
    autoscaler: LkeAutoscaler | None = None
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[LkeTaint, ...] = ()

    def __post_init__(self) -> None:
        if (self.count is None) == (self.autoscaler is None):
            raise ValueError("a node pool has either a fixed count or an autoscaler")

    def to_terraform(self) -> dict[str, Any]:
        pool: dict[str, Any] = {"type": self.type}
        if self.count is not None:
            pool["count"] = self.count
        if self.autoscaler is not None:
            pool["autoscaler"] = self.autoscaler.to_terraform()
        if self.labels:
            pool["labels"] = dict(self.labels)
        if self.taints:
            pool["taint"] = [taint.to_terraform() for taint in self.taints]
        return pool


@dataclass(frozen=True)
class LkeControlPlane:
    """Control plane options: `high_availability` runs replicated control-plane components."""

    # A bool or a Terraform token.
    high_availability: bool | IResolvable = False

    def to_terraform(self) -> dict[str, Any]:
        return {"high_availability": self.high_availability}


class LkeCluster(TerraformResource):
    """`linode_lke_cluster`: the Kubernetes cluster and its node pools."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        label: str,
        region: str,
        k8s_version: str,
        pools: list[LkeNodePool],
        control_plane: LkeControlPlane | None = None,
        tags: tuple[str, ...] = (),
        preconditions: tuple[Precondition, ...] = (),
    ) -> None:
        super().__init__(
            scope,
            id,
            terraform_resource_type="linode_lke_cluster",
            terraform_generator_metadata={
                "provider_name": "linode",
                "provider_version_constraint": LINODE_PROVIDER_VERSION,
            },
            lifecycle=(
                TerraformResourceLifecycle(precondition=list(preconditions))
                if preconditions
                else None
            ),
        )
        if not pools:
            raise ValueError("an LKE cluster needs at least one node pool")
        self._attributes: dict[str, Any] = {
            "label": label,
            "region": region,
            "k8s_version": k8s_version,
            "pool": [pool.to_terraform() for pool in pools],
        }
        if control_plane is not None:
            self._attributes["control_plane"] = control_plane.to_terraform()
        if tags:
            self._attributes["tags"] = list(tags)

    def _synthesize_attributes(self) -> dict[str, Any]:
        return dict(self._attributes)

    @property
    def kubeconfig(self) -> str:
        """The cluster's kubeconfig, base64-encoded (sensitive)."""
        return self.get_string_attribute("kubeconfig")

    @property
    def cluster_id(self) -> str:
        return self.get_string_attribute("id")

    @property
    def api_endpoints(self) -> list[str]:
        return self.get_list_attribute("api_endpoints")


class LkeVersions(TerraformDataSource):
    """`linode_lke_versions`: the Kubernetes versions LKE offers now (`versions[*].id`)."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(
            scope,
            id,
            terraform_resource_type="linode_lke_versions",
            terraform_generator_metadata={
                "provider_name": "linode",
                "provider_version_constraint": LINODE_PROVIDER_VERSION,
            },
        )

    def _synthesize_attributes(self) -> dict[str, Any]:
        return {}

    @property
    def version_ids_expression(self) -> str:
        """A Terraform expression (without `${}`) for the list of offered versions."""
        return f"data.linode_lke_versions.{self.friendly_unique_id}.versions[*].id"
