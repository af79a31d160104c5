"""
Secrets the operator gives (the alert receiver's URL or password, a registry password) enter only
as sensitive Terraform variables, land in Kubernetes Secrets, and are used from there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from infra_cdktf import alerting, inference_manifests
from infra_cdktf.synth_testing import manifests, settings_for_tests, synthesize


def _secret(stack: dict[str, Any], name: str) -> dict[str, Any]:
    secrets: dict[str, dict[str, Any]] = stack["resource"]["kubernetes_secret_v1"]
    (found,) = (secret for secret in secrets.values() if secret["metadata"]["name"] == name)
    return found


def test_the_slack_receivers_url_is_a_sensitive_variable_stored_in_a_secret(
    tmp_path: Path,
) -> None:
    settings = settings_for_tests(alert_receiver="slack", alert_slack_channel="#bert-alerts")
    platform = synthesize(settings, tmp_path)["platform"]
    variable = platform["variable"]["alert_slack_webhook_url"]
    assert variable["sensitive"] is True and "default" not in variable
    secret = _secret(platform, alerting.RECEIVER_SECRET)
    assert secret["data"] == {"slack-webhook-url": "${var.alert_slack_webhook_url}"}
    release = platform["resource"]["helm_release"]["kube-prometheus-stack"]
    values = yaml.safe_load(release["values"][0])
    (operator,) = (r for r in values["alertmanager"]["config"]["receivers"] if r["name"] != "null")
    assert operator["slack_configs"][0]["channel"] == "#bert-alerts"
    assert "alertmanager-receiver" in release["depends_on"][1]


def test_a_private_registry_gets_a_pull_secret_the_pods_use(tmp_path: Path) -> None:
    settings = settings_for_tests(
        image="registry.example.com/bert/api-gpu:1", registry_username="deploy"
    )
    synthesized = synthesize(settings, tmp_path)
    inference = synthesized["inference"]
    assert inference["variable"]["registry_password"]["sensitive"] is True
    secret = _secret(inference, inference_manifests.REGISTRY_SECRET)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = secret["data"][".dockerconfigjson"]
    assert "registry.example.com" in config and "${var.registry_password}" in config
    pulling = [m for m in manifests(synthesized) if m["kind"] in ("Deployment", "Job")]
    assert len(pulling) == 2
    for manifest in pulling:
        pod = manifest["spec"]["template"]["spec"]
        assert pod["imagePullSecrets"] == [{"name": inference_manifests.REGISTRY_SECRET}]
    # The Deployment and the GPU check wait for the Secret.
    for resource in inference["resource"]["kubernetes_manifest"].values():
        if resource["manifest"]["kind"] in ("Deployment", "Job"):
            assert "kubernetes_secret_v1.registry-secret" in json.dumps(resource["depends_on"])


def test_a_public_image_needs_no_pull_secret(tmp_path: Path) -> None:
    synthesized = synthesize(settings_for_tests(), tmp_path)
    assert "registry_password" not in synthesized["inference"].get("variable", {})
    for manifest in (m for m in manifests(synthesized) if m["kind"] in ("Deployment", "Job")):
        assert "imagePullSecrets" not in manifest["spec"]["template"]["spec"]
