"""
Synth-level tests of the whole app (cdktf `Testing` matchers on the real synthesized JSON): every
resource with its key properties, what a changed input changes, and a deterministic snapshot.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cdktf
import pytest
import yaml

from infra_cdktf import charts, contract
from infra_cdktf.cluster_settings import SUPPORTED_KUBERNETES_VERSIONS, ClusterSettings
from infra_cdktf.synth_testing import (
    SNAPSHOT,
    changed_paths,
    manifests,
    render_snapshot,
    settings_for_tests,
    synthesize,
)

Synth = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(settings_for_tests(), tmp_path_factory.mktemp("synth"))


def _has(stack: dict[str, Any], resource_type: str, properties: dict[str, Any]) -> bool:
    return bool(
        cdktf.Testing.to_have_resource_with_properties(json.dumps(stack), resource_type, properties)
    )


def _manifest(synth: Synth, kind: str, name: str) -> dict[str, Any]:
    (found,) = (m for m in manifests(synth) if m["kind"] == kind and m["metadata"]["name"] == name)
    return found


def test_cluster_stack_has_a_tainted_autoscaled_gpu_pool_and_a_platform_pool(
    synth: Synth,
) -> None:
    cluster = synth["cluster"]
    assert _has(
        cluster,
        "linode_lke_cluster",
        {
            "label": "${var.cluster_label}",
            "region": "${var.region}",
            "k8s_version": "${var.k8s_version}",
            "pool": [
                {
                    "type": "${var.platform_node_type}",
                    "count": "${var.platform_node_count}",
                    "labels": {"bert-serve/pool": "platform"},
                },
                {
                    "type": "${var.gpu_node_type}",
                    "autoscaler": {"min": "${var.gpu_node_count}", "max": 3},
                    "labels": {"bert-serve/pool": "gpu"},
                    "taint": [
                        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
                    ],
                },
            ],
            "control_plane": {"high_availability": "${var.ha_control_plane}"},
            "tags": ["bert-inference", "gpu"],
        },
    )
    (_, gpu_pool) = cluster["resource"]["linode_lke_cluster"]["cluster"]["pool"]
    assert "count" not in gpu_pool, "a count beside the autoscaler is reset on every apply"
    variables = cluster["variable"]
    assert variables["linode_token"]["sensitive"] is True
    assert "default" not in variables["linode_token"]
    assert variables["cluster_label"]["default"] == "bert-inference-cluster"
    assert variables["region"]["default"] == "us-ord"
    assert variables["gpu_node_type"]["default"] == "g2-gpu-rtx4000a1-s"
    assert variables["gpu_node_count"]["default"] == 1
    assert "g1-gpu-rtx6000-" in variables["gpu_node_type"]["validation"][0]["condition"]
    assert cluster["provider"]["linode"] == [{"token": "${var.linode_token}"}]
    assert cluster["terraform"]["required_providers"]["linode"]["source"] == "linode/linode"
    assert cluster["output"]["kubeconfig"]["sensitive"] is True


def test_k8s_version_is_supported_upstream_and_offered_by_lke(synth: Synth) -> None:
    cluster = synth["cluster"]
    variable = cluster["variable"]["k8s_version"]
    assert variable["default"] in SUPPORTED_KUBERNETES_VERSIONS
    assert variable["default"] != "1.33", "1.33 ended upstream on 2026-06-28"
    condition = variable["validation"][0]["condition"]
    assert all(f'"{version}"' in condition for version in SUPPORTED_KUBERNETES_VERSIONS)
    assert "linode_lke_versions" in cluster["data"]
    (precondition,) = cluster["resource"]["linode_lke_cluster"]["cluster"]["lifecycle"][
        "precondition"
    ]
    assert "data.linode_lke_versions.offered-versions.versions[*].id" in precondition["condition"]
    assert "var.k8s_version" in precondition["condition"]


def test_ha_control_plane_is_an_option(synth: Synth, tmp_path: Path) -> None:
    assert synth["cluster"]["variable"]["ha_control_plane"] == {
        "default": False,
        "description": "Replicated control plane (LKE HA; billed extra).",
        "type": "bool",
    }
    settings = settings_for_tests(cluster=ClusterSettings(high_availability=True))
    cluster = synthesize(settings, tmp_path)["cluster"]
    assert cluster["variable"]["ha_control_plane"]["default"] is True


def test_platform_and_inference_reach_the_cluster_through_its_kubeconfig(synth: Synth) -> None:
    for stack in ("platform", "inference"):
        provider = synth[stack]["provider"]["kubernetes"][0]
        assert "terraform_remote_state.cross-stack-reference-input-cluster" in provider["host"]
        assert "base64decode(" in provider["cluster_ca_certificate"]
    helm = synth["platform"]["provider"]["helm"][0]["kubernetes"]
    assert "cross-stack-reference-input-cluster" in helm["token"]


def test_every_add_on_is_a_pinned_helm_chart(synth: Synth) -> None:
    releases = synth["platform"]["resource"]["helm_release"]
    assert set(releases) == {chart.release for chart in charts.ALL_CHARTS}
    for chart in charts.ALL_CHARTS:
        release = releases[chart.release]
        assert release["repository"] == chart.repository
        assert release["chart"] == chart.chart
        assert release["version"] == chart.version
        assert release["version"].lstrip("v").count(".") == 2, "exact versions, no ranges"
        assert release["namespace"] == chart.namespace
        assert release["atomic"] is True
    assert "ingress-nginx" not in json.dumps(releases), "the community ingress-nginx is retired"


def test_grafana_admin_password_is_generated_into_a_secret(synth: Synth) -> None:
    platform = synth["platform"]
    assert _has(platform, "random_password", {"length": 32})
    assert _has(
        platform,
        "kubernetes_secret_v1",
        {
            "metadata": {"name": "grafana-admin", "namespace": "monitoring"},
            "data": {"admin-password": "${random_password.grafana-admin-password.result}"},
        },
    )
    values = yaml.safe_load(
        platform["resource"]["helm_release"]["kube-prometheus-stack"]["values"][0]
    )
    assert values["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    assert "adminPassword" not in values["grafana"]
    sidecar = values["grafana"]["sidecar"]["dashboards"]
    assert sidecar["enabled"] and sidecar["label"] == charts.DASHBOARD_LABEL


def test_inference_deployment_runs_on_a_gpu_safely(synth: Synth) -> None:
    deployment = _manifest(synth, "Deployment", contract.APP)
    assert "replicas" not in deployment["spec"], "the HPA owns replicas"
    pod = deployment["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    (prepare,) = pod["initContainers"]
    assert api["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert pod["nodeSelector"] == {"bert-serve/pool": "gpu"}
    assert api["startupProbe"]["httpGet"]["path"] == contract.READY_PATH
    assert api["readinessProbe"]["httpGet"]["path"] == contract.READY_PATH
    assert api["livenessProbe"]["httpGet"]["path"] == contract.LIVE_PATH
    assert api["lifecycle"]["preStop"]["sleep"]["seconds"] > 0
    assert pod["terminationGracePeriodSeconds"] > api["lifecycle"]["preStop"]["sleep"]["seconds"]
    for container in (api, prepare):
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
    assert prepare["command"] == [contract.PREPARE_COMMAND]
    assert prepare["args"][:3] == ["$(MODEL_NAME)", "--out", contract.PREPARED_MODEL_DIR]
    assert {"name": "MODEL_NAME", "value": contract.PREPARED_MODEL_DIR} in api["env"]
    (cache,) = (v for v in pod["volumes"] if v["name"] == "model-cache")
    claim = cache["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == "20Gi"


def test_config_map_keeps_the_seeds_keys(synth: Synth) -> None:
    data = _manifest(synth, "ConfigMap", "bert-inference-config")["data"]
    assert data["MODEL_NAME"] == "google-bert/bert-base-uncased"
    assert data["MAX_SEQUENCE_LENGTH"] == "128"
    assert data["BATCH_SIZE"] == "32"
    assert data["ONNX_EXECUTION_PROVIDER"] == "CUDA"


def test_a_config_change_rolls_the_pods(tmp_path: Path, synth: Synth) -> None:
    def checksum(synthesized: Synth) -> str:
        template = _manifest(synthesized, "Deployment", contract.APP)["spec"]["template"]
        return str(template["metadata"]["annotations"]["bert-serve/config-sha256"])

    changed = synthesize(settings_for_tests(batch_size=16), tmp_path)
    assert _manifest(changed, "ConfigMap", "bert-inference-config")["data"]["BATCH_SIZE"] == "16"
    assert checksum(changed) != checksum(synth)
    assert len(checksum(synth)) == 64


def test_services_budget_policy_and_monitoring_objects(synth: Synth) -> None:
    services = [m for m in manifests(synth) if m["kind"] == "Service"]
    assert [s["spec"]["type"] for s in services] == ["ClusterIP"], "no public Service"
    assert _manifest(synth, "PodDisruptionBudget", contract.APP)["spec"]["maxUnavailable"] == 1
    policy = _manifest(synth, "NetworkPolicy", contract.APP)["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    reach = {
        rule["ports"][0]["port"]: {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for peer in rule["from"]
        }
        for rule in policy["ingress"]
    }
    # The API only from the ingress controller; the metrics port only from Prometheus.
    assert reach == {
        contract.HTTP_PORT: {contract.INGRESS_NAMESPACE},
        contract.METRICS_PORT: {contract.MONITORING_NAMESPACE},
    }
    peers = [peer for rule in policy["ingress"] for peer in rule["from"]]
    assert all(peer["podSelector"]["matchLabels"] for peer in peers), "pods, not namespaces"
    monitor = _manifest(synth, "ServiceMonitor", contract.APP)["spec"]
    assert monitor["endpoints"][0]["path"] == contract.METRICS_PATH
    rules = _manifest(synth, "PrometheusRule", contract.APP)["spec"]
    shipped = yaml.safe_load(Path("deploy/prometheus/bert-inference.rules.yml").read_text())
    assert rules == shipped
    dashboard = _manifest(synth, "ConfigMap", "bert-inference-dashboard")
    assert dashboard["metadata"]["labels"][charts.DASHBOARD_LABEL] == "1"
    assert (
        dashboard["data"]["bert-inference.json"]
        == Path("deploy/grafana/dashboards/bert-inference.json").read_text()
    )


def test_prometheus_asks_for_a_generated_password(synth: Synth) -> None:
    inference = synth["inference"]
    assert _has(
        inference,
        "kubernetes_secret_v1",
        {"type": "nginx.org/htpasswd", "metadata": {"name": "prometheus-basic-auth"}},
    )
    policy = _manifest(synth, "Policy", "prometheus-basic-auth")
    assert policy["spec"]["basicAuth"]["secret"] == "prometheus-basic-auth"
    server = _manifest(synth, "VirtualServer", "prometheus")
    assert server["spec"]["policies"] == [{"name": "prometheus-basic-auth"}]


def test_api_key_is_generated_only_when_required(tmp_path: Path, synth: Synth) -> None:
    assert "api-key-secret" not in synth["inference"]["resource"]["kubernetes_secret_v1"]
    with_key = synthesize(settings_for_tests(require_api_key=True), tmp_path)
    assert _has(
        with_key["inference"],
        "kubernetes_secret_v1",
        {"data": {"api-key": "${random_password.api-key.result}"}},
    )
    pod = _manifest(with_key, "Deployment", contract.APP)["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    (key_file,) = (e["value"] for e in api["env"] if e["name"] == "API_KEY_FILE")
    (mount,) = (m for m in api["volumeMounts"] if m["name"] == "api-key")
    assert key_file.startswith(mount["mountPath"]) and mount["readOnly"] is True
    (volume,) = (v for v in pod["volumes"] if v["name"] == "api-key")
    assert volume["secret"]["secretName"] == "bert-inference-api-key"
    assert not any(e["name"] == "API_KEY" for e in api["env"]), "the key is a file, not env"


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        (
            ClusterSettings(gpu_node_type="g2-gpu-rtx4000a2-s"),
            {"cluster/variable/gpu_node_type/default"},
        ),
        (ClusterSettings(gpu_node_count=2), {"cluster/variable/gpu_node_count/default"}),
    ],
)
def test_a_cluster_input_changes_only_its_variable(
    synth: Synth, tmp_path: Path, cluster: ClusterSettings, expected: set[str]
) -> None:
    changed = synthesize(settings_for_tests(cluster=cluster), tmp_path)
    diff = changed_paths(synth, changed)
    assert {path.lstrip("/") for path in diff} == expected


def test_a_new_domain_changes_only_hosts_and_urls(synth: Synth, tmp_path: Path) -> None:
    changed = synthesize(settings_for_tests(domain="models.example.org"), tmp_path)
    diff = changed_paths(synth, changed)
    assert diff, "the domain must show up somewhere"
    touched_stacks = {path.lstrip("/").split("/")[0] for path in diff}
    assert touched_stacks == {"platform", "inference"}
    for path, (before, after) in diff.items():
        assert "example.com" in str(before) and "models.example.org" in str(after), path
    hosts = {path for path in diff if path.endswith("/host")}
    assert len(hosts) == 3


def test_synthesis_is_deterministic_and_matches_the_snapshot(synth: Synth, tmp_path: Path) -> None:
    again = synthesize(settings_for_tests(), tmp_path)
    assert render_snapshot(again) == render_snapshot(synth)
    assert SNAPSHOT.read_text() == render_snapshot(synth), (
        "the synthesized JSON changed: review the diff, then regenerate the snapshot as "
        "synth_testing.py says"
    )
