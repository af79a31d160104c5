"""
Policy and schema checks of what the app synthesizes: checkov on every stack's cdk.tf.json and on
the plain-YAML export (`synth --format yaml`, the objects GitOps users apply), kubernetes-validate
(strict) on every core object of that export, and no value that looks like a hard-coded secret.
Each checkov run prints how many checks it evaluated and must evaluate at least a floor of them:
a run that parsed nothing would otherwise pass.

The Helm charts' own objects are rendered by Helm in the cluster; no chart archive can be fetched
here, so their values are held to the keys read in each chart version instead (chart_keys_test).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from infra_cdktf.cluster_settings import SUPPORTED_KUBERNETES_VERSIONS
from infra_cdktf.export import export
from infra_cdktf.synth_testing import (
    STACKS,
    flatten,
    settings_for_tests,
    synthesize,
)

# Built by Pants (runtime_package_dependencies) from the checkov resolve.
CHECKOV = Path("3rdparty.python/checkov.pex")
# Every skipped check with its reason. Nothing else may fail.
CHECKOV_SKIPS = {
    "CKV_K8S_43": "Image digests: the image is an input (BERT_SERVE_IMAGE) and the default is a "
    "release tag; docs/DEPLOY.md says to pin a digest (name@sha256:...) in production.",
}
# The Kubernetes versions the cluster stack accepts, plus the newest schemas kubernetes-validate
# bundles.
KUBERNETES_VERSIONS = (
    *SUPPORTED_KUBERNETES_VERSIONS,
    kubernetes_validate.utils.latest_version(),
)
# Custom resources (cert-manager, Prometheus operator, NGINX Ingress Controller): no schema in
# kubernetes-validate; their structure is asserted in app_test.py and edge_test.py.
CUSTOM_KINDS = {"ClusterIssuer", "ServiceMonitor", "PrometheusRule", "VirtualServer", "Policy"}
# Fewer evaluated checks than this means checkov did not see the objects.
TERRAFORM_CHECK_FLOOR = {"cluster": 1, "platform": 1, "inference": 1}
KUBERNETES_CHECK_FLOOR = 150
Synth = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synthesize(settings_for_tests(require_api_key=True), out)
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export")
    export(settings_for_tests(require_api_key=True, registry_username="deploy"), out)
    return out


def _exported_objects(out: Path) -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in sorted((out / "manifests").glob("*.yaml"))]


@pytest.fixture(scope="module")
def synth(outdir: Path) -> Synth:
    return {
        stack: json.loads((outdir / "stacks" / stack / "cdk.tf.json").read_text())
        for stack in STACKS
    }


def _checkov(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(CHECKOV), "--skip-download", "--compact", "--output", "json", *args]
        + ["--skip-check", ",".join(CHECKOV_SKIPS)],
        capture_output=True,
        text=True,
        # No network: checkov would try to download its guideline mappings otherwise.
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"},
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout)
    first: dict[str, Any] = report[0] if isinstance(report, list) else report
    return first


def _evaluated(report: dict[str, Any], what: str) -> int:
    summary = report["summary"]
    evaluated = int(summary["passed"]) + int(summary["failed"])
    print(f"checkov on {what}: {evaluated} checks evaluated ({summary['passed']} passed)")
    return evaluated


def _failures(report: dict[str, Any]) -> list[str]:
    return [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in report["results"]["failed_checks"]
    ]


def test_every_skip_has_a_reason() -> None:
    assert all(len(reason) > 40 for reason in CHECKOV_SKIPS.values())


@pytest.mark.parametrize("stack", STACKS)
def test_checkov_passes_on_the_synthesized_terraform(outdir: Path, stack: str) -> None:
    report = _checkov(
        "-f", str(outdir / "stacks" / stack / "cdk.tf.json"), "--framework", "terraform_json"
    )
    assert report["summary"]["parsing_errors"] == 0
    assert _evaluated(report, f"the {stack} stack") >= TERRAFORM_CHECK_FLOOR[stack]
    assert _failures(report) == []


def test_checkov_passes_on_the_exported_kubernetes_objects(exported: Path) -> None:
    report = _checkov("-d", str(exported / "manifests"), "--framework", "kubernetes")
    assert report["summary"]["parsing_errors"] == 0
    assert _evaluated(report, "the YAML export") >= KUBERNETES_CHECK_FLOOR
    checked = {check["resource"].split(".")[0] for check in report["results"]["passed_checks"]}
    assert {"Deployment", "Job", "Service"} <= checked
    assert _failures(report) == []


def test_the_export_holds_every_object_the_inference_stack_applies(
    exported: Path, synth: Synth
) -> None:
    applied = synth["inference"]["resource"]["kubernetes_manifest"]
    objects = _exported_objects(exported)
    assert len(objects) == len(applied) + 1, "plus the monitoring namespace"
    assert objects[0]["kind"] == "Namespace"
    kinds = [m["kind"] for m in objects]
    assert kinds.index("Job") < kinds.index("Deployment"), "the GPU check comes first"
    secrets = (exported / "SECRETS").read_text()
    assert "bert-inference/bert-inference-registry" in secrets
    assert "monitoring/alertmanager-receiver: webhook-url" in secrets


def test_every_core_object_validates_strictly_against_the_kubernetes_schema(
    exported: Path,
) -> None:
    objects = _exported_objects(exported)
    kinds = {m["kind"] for m in objects}
    assert kinds - CUSTOM_KINDS == {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Job",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceAccount",
    }
    for manifest in (m for m in objects if m["kind"] not in CUSTOM_KINDS):
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)


def test_the_schema_check_catches_a_misspelt_field(exported: Path) -> None:
    (deployment,) = (m for m in _exported_objects(exported) if m["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


SECRET_KEYS = re.compile(
    r"(password|passwd|token|api[-_]?key|secret[-_]?key|private[-_]?key)$", re.I
)
CANDIDATE = re.compile(r"[A-Za-z0-9+/=_\-]{20,}")


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _secret_like(synth: Synth) -> Iterator[str]:
    """
    Literal values under secret-sounding keys, and random-looking tokens (long, mixed case and
    digits, high entropy) anywhere. Terraform references (${...}) are not literals.
    """
    for path, value in flatten(synth):
        # "//" holds cdktf's own metadata (construct paths, output names), not configuration.
        if not isinstance(value, str) or "///" in path:
            continue
        literal = re.sub(r"\$\{[^}]*\}", "", value)
        key = re.split(r"[/\[]", path)[-1]
        if SECRET_KEYS.search(key) and literal.strip() and literal == value:
            yield f"{path}: literal under a secret-sounding key"
        for token in CANDIDATE.findall(literal):
            classes = sum(bool(re.search(p, token)) for p in ("[a-z]", "[A-Z]", "[0-9]"))
            if classes == 3 and _entropy(token) > 4.0:
                yield f"{path}: {token[:6]}... looks random"


def test_nothing_synthesized_looks_like_a_hard_coded_secret(synth: Synth) -> None:
    assert list(_secret_like(synth)) == []


def test_the_secret_scan_catches_planted_secrets(synth: Synth) -> None:
    planted = json.loads(json.dumps(synth))
    planted["platform"]["provider"]["helm"][0]["kubernetes"]["token"] = "not-a-reference"
    planted["inference"]["output"]["inference_url"][
        "value"
    ] = "https://x?k=Zq8Lr2Vx9PbT4mKw7YcN3sHd"
    found = list(_secret_like(planted))
    assert len(found) == 2, found
