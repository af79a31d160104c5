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

from cdktf import IResolvable, TerraformProvider, TerraformResource
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
class LkeNodePool:
    """A node pool: plan (`type`), node count, optional autoscaler and node labels."""

    type: str
    count: float
    autoscaler: LkeAutoscaler | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def to_terraform(self) -> dict[str, Any]:
        pool: dict[str, Any] = {"type": self.type, "count": self.count}
        if self.autoscaler is not None:
            pool["autoscaler"] = self.autoscaler.to_terraform()
        if self.labels:
            pool["labels"] = dict(self.labels)
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
    ) -> None:
        super().__init__(
            scope,
            id,
            terraform_resource_type="linode_lke_cluster",
            terraform_generator_metadata={
                "provider_name": "linode",
                "provider_version_constraint": LINODE_PROVIDER_VERSION,
            },
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
