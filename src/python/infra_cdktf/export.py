"""
Every Kubernetes object of the app as plain YAML, for GitOps (Argo CD, Flux) or `kubectl apply`
without Terraform, and for the policy checks, which scan exactly this:

- `manifests/`: one file per object the inference stack applies, numbered in apply order (the
  namespace first, the GPU check Job before the Deployment; Argo CD's sync wave on the Job
  makes it wait too);
- `charts/`: per add-on, its values file, and `charts.yaml` with repository, chart, pinned
  version and namespace, in install order (kube-prometheus-stack first: its CRDs serve the
  others). Helm renders those objects; give the files to `helm upgrade --install` or to a
  GitOps Helm source.

Secrets are not exported: their values are generated or secret. `SECRETS` names each one the
objects refer to and what it must hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from infra_cdktf import alerting, charts, contract, edge_manifests, inference_manifests
from infra_cdktf.inference_manifests import Manifest
from infra_cdktf.settings import AppSettings
from infra_cdktf.stacks.inference import all_manifests
from infra_cdktf.stacks.platform import chart_values_by_release

# (namespace, name): what the Secret holds; created by the Terraform stacks when they deploy.
SECRETS = {
    (contract.MONITORING_NAMESPACE, charts.GRAFANA_ADMIN_SECRET): "admin-user, admin-password",
    (contract.MONITORING_NAMESPACE, edge_manifests.PROMETHEUS_BASIC_AUTH_SECRET): "type "
    "nginx.org/htpasswd, key htpasswd",
}


def to_yaml(document: object) -> str:
    return str(yaml.dump(document, Dumper=charts.PlainDumper, sort_keys=False))


@dataclass(frozen=True)
class Export:
    manifests: list[Path]
    chart_values: list[Path]
    secrets: list[str]


def _file_name(index: int, manifest: Manifest) -> str:
    meta = manifest["metadata"]
    parts = [manifest["kind"], meta.get("namespace", "cluster"), meta["name"]]
    return f"{index:02d}-" + re.sub(r"[^a-z0-9.-]", "-", "-".join(parts).lower()) + ".yaml"


def secrets_needed(settings: AppSettings) -> list[str]:
    needed = dict(SECRETS)
    receiver = settings.receiver
    needed[
        (contract.MONITORING_NAMESPACE, alerting.RECEIVER_SECRET)
    ] = f"{receiver.secret_key} (the {receiver.kind} receiver's secret)"
    if settings.require_api_key:
        needed[(contract.NAMESPACE, inference_manifests.API_KEY_SECRET)] = "api-key"
    if settings.registry_username:
        needed[
            (contract.NAMESPACE, inference_manifests.REGISTRY_SECRET)
        ] = "type kubernetes.io/dockerconfigjson"
    return [f"{namespace}/{name}: {holds}" for (namespace, name), holds in sorted(needed.items())]


def namespace_manifest(name: str) -> Manifest:
    labels = {"app.kubernetes.io/part-of": "bert-serve"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def export(settings: AppSettings, out: Path) -> Export:
    """Write the export under `out` (replacing an earlier one) and say what was written."""
    manifest_dir, chart_dir = out / "manifests", out / "charts"
    for folder in (manifest_dir, chart_dir):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.yaml"):
            old.unlink()
    # The monitoring namespace is a typed resource of the platform stack; the charts need it.
    objects = [namespace_manifest(contract.MONITORING_NAMESPACE), *all_manifests(settings)]
    written = []
    for index, manifest in enumerate(objects):
        path = manifest_dir / _file_name(index, manifest)
        path.write_text(to_yaml(manifest))
        written.append(path)
    values_files, index_entries = [], []
    for chart, values in chart_values_by_release(settings).items():
        path = chart_dir / f"{chart.release}.values.yaml"
        path.write_text(charts.to_yaml(values))
        values_files.append(path)
        index_entries.append(
            {
                "release": chart.release,
                "repository": chart.repository,
                "chart": chart.chart,
                "version": chart.version,
                "namespace": chart.namespace,
                "values": path.name,
            }
        )
    (chart_dir / "charts.yaml").write_text(to_yaml({"charts": index_entries}))
    secrets = secrets_needed(settings)
    (out / "SECRETS").write_text("Secrets to create before applying:\n" + "\n".join(secrets) + "\n")
    return Export(manifests=written, chart_values=values_files, secrets=secrets)
