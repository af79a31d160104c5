"""
Metrics on a port of their own (bert_api's METRICS_PORT): the ConfigMap passes it, the pod and
Service expose it as `metrics`, Prometheus scrapes it, and only Prometheus may reach it; the HTTP
port is for the edge alone.
"""

from __future__ import annotations

from infra_cdktf import contract, inference_manifests, inference_network, monitoring_manifests
from infra_cdktf.synth_testing import settings_for_tests

SEPARATE_PORT = 9464


def test_a_separate_metrics_port_reaches_only_prometheus() -> None:
    assert contract.METRICS_PORT == SEPARATE_PORT
    settings = settings_for_tests()
    config = inference_manifests.config_map(settings)["data"]
    assert config[contract.METRICS_PORT_SETTING] == str(SEPARATE_PORT)
    (api,) = inference_manifests.deployment(settings)["spec"]["template"]["spec"]["containers"]
    assert {"name": "metrics", "containerPort": SEPARATE_PORT, "protocol": "TCP"} in api["ports"]
    ports = {p["name"]: p["port"] for p in inference_network.service()["spec"]["ports"]}
    assert ports == {"http": contract.HTTP_PORT, "metrics": SEPARATE_PORT}
    (endpoint,) = monitoring_manifests.service_monitor()["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    rules = inference_network.network_policy()["spec"]["ingress"]
    reach = {
        rule["ports"][0]["port"]: {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for peer in rule["from"]
        }
        for rule in rules
    }
    assert reach == {
        contract.HTTP_PORT: {contract.INGRESS_NAMESPACE},
        SEPARATE_PORT: {contract.MONITORING_NAMESPACE},
    }
