"""
Inputs of the whole app (domain, ACME e-mail, image, scaling), read from the environment at synth
time and validated before anything is synthesized. They replace the seed's `configure-domains.sh`.

The cluster's own inputs (`linode_token`, `cluster_label`, `region`, `gpu_node_type`,
`gpu_node_count`) are Terraform variables of the cluster stack, as in the seed; `ClusterSettings`
holds their defaults.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from infra_cdktf.alerting import AlertReceiver, AlertReceiverError
from infra_cdktf.cluster_settings import ClusterSettings

_DOMAIN = re.compile(r"^(?=.{1,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_QUANTITY = re.compile(r"^[1-9][0-9]*(Mi|Gi|Ti)$")
ISSUERS = ("letsencrypt-staging", "letsencrypt-prod")
ENV_PREFIX = "BERT_SERVE_"
REQUIRED = ("domain", "acme_email", "alert_receiver")


class AppSettingsError(ValueError):
    """An input is missing or invalid; the message names the environment variable."""


@dataclass(frozen=True)
class AppSettings:
    """Everything the platform and inference stacks need besides the cluster."""

    # Public DNS zone: the app serves inference.<domain>, grafana.<domain>, prometheus.<domain>.
    domain: str
    # Let's Encrypt account e-mail (expiry notices).
    acme_email: str
    # The GPU API image (deploy/docker:api-gpu, pushed to a registry); it also holds `prepare`.
    image: str = "ghcr.io/bert-serve/api-gpu:0.1.0"
    model_name: str = "google-bert/bert-base-uncased"
    max_sequence_length: int = 128
    batch_size: int = 32
    min_replicas: int = 1
    max_replicas: int = 3
    # Where alerts go: slack | email | webhook (alerting.py); the URL or password is a sensitive
    # Terraform variable of the platform stack, never an input here.
    alert_receiver: str = ""
    alert_slack_channel: str = ""
    alert_email_to: str = ""
    alert_email_from: str = ""
    alert_smtp_smarthost: str = ""
    alert_smtp_username: str = ""
    # Pods scale out when, averaged over the pods, the batcher queue holds more than this many
    # sequences or more than `active_requests_target` requests are in flight.
    queue_depth_target: int = 64
    active_requests_target: int = 16
    # A private registry: its user name here, its password or token as the inference stack's
    # sensitive Terraform variable `registry_password`; empty: the image is public.
    registry_username: str = ""
    # Generate an API key into a Secret and require it on inference routes.
    require_api_key: bool = False
    model_cache_size: str = "20Gi"
    storage_class: str = "linode-block-storage"
    # Which ClusterIssuer signs the certificates: staging while testing (no rate limits).
    tls_issuer: str = "letsencrypt-prod"
    # Where each stack keeps its Terraform state (terraform.<stack>.tfstate); empty: the folder
    # synth runs in. For a team, move the state to a remote backend (docs/DEPLOY.md).
    state_dir: str = ""
    cluster: ClusterSettings = field(default_factory=ClusterSettings)

    def __post_init__(self) -> None:
        if not _DOMAIN.match(self.domain):
            raise AppSettingsError(
                f"{ENV_PREFIX}DOMAIN {self.domain!r} is not a lower-case DNS name such as "
                "example.com"
            )
        if not _EMAIL.match(self.acme_email):
            raise AppSettingsError(f"{ENV_PREFIX}ACME_EMAIL {self.acme_email!r} is not an e-mail")
        if self.tls_issuer not in ISSUERS:
            raise AppSettingsError(f"{ENV_PREFIX}TLS_ISSUER must be one of {', '.join(ISSUERS)}")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise AppSettingsError(
                f"{ENV_PREFIX}MIN_REPLICAS ({self.min_replicas}) must be >= 1 and <= "
                f"{ENV_PREFIX}MAX_REPLICAS ({self.max_replicas})"
            )
        if not _QUANTITY.match(self.model_cache_size):
            raise AppSettingsError(
                f"{ENV_PREFIX}MODEL_CACHE_SIZE {self.model_cache_size!r} must look like 20Gi"
            )
        for name in ("max_sequence_length", "batch_size", "queue_depth_target"):
            if getattr(self, name) < 1:
                raise AppSettingsError(f"{ENV_PREFIX}{name.upper()} must be >= 1")
        if self.active_requests_target < 1:
            raise AppSettingsError(f"{ENV_PREFIX}ACTIVE_REQUESTS_TARGET must be >= 1")
        try:
            _ = self.receiver
        except AlertReceiverError as error:
            raise AppSettingsError(f"{ENV_PREFIX}{error}") from None

    @property
    def receiver(self) -> AlertReceiver:
        return AlertReceiver(
            kind=self.alert_receiver,
            slack_channel=self.alert_slack_channel,
            email_to=self.alert_email_to,
            email_from=self.alert_email_from,
            smtp_smarthost=self.alert_smtp_smarthost,
            smtp_username=self.alert_smtp_username,
        )

    @property
    def registry_server(self) -> str:
        """The registry host of the image (Docker Hub when the name has none)."""
        first, _, rest = self.image.partition("/")
        return first if rest and ("." in first or ":" in first) else "docker.io"

    def state_path(self, stack: str) -> str:
        folder = self.state_dir or os.getcwd()
        return os.path.join(folder, f"terraform.{stack}.tfstate")

    def host(self, subdomain: str) -> str:
        return f"{subdomain}.{self.domain}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AppSettings:
        """
        `BERT_SERVE_<FIELD>` for every field; DOMAIN, ACME_EMAIL and ALERT_RECEIVER are required.
        The cluster autoscaler's upper bound is `BERT_SERVE_GPU_AUTOSCALER_MAX`.
        """
        values: dict[str, object] = {}
        for spec in fields(cls):
            if spec.name == "cluster":
                continue
            raw = environ.get(ENV_PREFIX + spec.name.upper())
            if raw is None:
                if spec.name in REQUIRED:
                    raise AppSettingsError(
                        f"{ENV_PREFIX}{spec.name.upper()} is required (see docs/DEPLOY.md)"
                    )
                continue
            values[spec.name] = _convert(spec.name, raw, spec.type)
        autoscaler_max = environ.get(ENV_PREFIX + "GPU_AUTOSCALER_MAX")
        if autoscaler_max is not None:
            cluster_max = _convert("gpu_autoscaler_max", autoscaler_max, "int")
            assert isinstance(cluster_max, int)
            values["cluster"] = ClusterSettings(gpu_autoscaler_max=cluster_max)
        return cls(**values)  # type: ignore[arg-type]


def _convert(name: str, raw: str, kind: object) -> object:
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if kind_name == "int":
        try:
            return int(raw)
        except ValueError:
            raise AppSettingsError(
                f"{ENV_PREFIX}{name.upper()}={raw!r} is not an integer"
            ) from None
    if kind_name == "bool":
        if raw.lower() not in ("true", "false", "1", "0"):
            raise AppSettingsError(f"{ENV_PREFIX}{name.upper()}={raw!r} must be true or false")
        return raw.lower() in ("true", "1")
    return raw
