"""
Policy and schema checks of what the app synthesizes: checkov on every stack's cdk.tf.json and on
the Kubernetes objects, kubernetes-validate (strict) on every core object, and no value that
looks like a hard-coded secret.
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

from infra_cdktf.synth_testing import (
    STACKS,
    flatten,
    manifests,
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
# Kubernetes 1.31 is the oldest the app supports; 1.33 is LKE's default here; plus the newest
# schemas kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.31", "1.33", kubernetes_validate.utils.latest_version())
# Custom resources (cert-manager, Prometheus operator): no schema in kubernetes-validate; their
# structure is asserted in app_test.py.
CUSTOM_KINDS = {"ClusterIssuer", "ServiceMonitor", "PrometheusRule"}
Synth = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synthesize(settings_for_tests(require_api_key=True), out)
    return out


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
    assert _failures(report) == []


def test_checkov_passes_on_the_kubernetes_objects(synth: Synth, tmp_path: Path) -> None:
    (tmp_path / "objects.yaml").write_text(yaml.safe_dump_all(manifests(synth)))
    report = _checkov("-d", str(tmp_path), "--framework", "kubernetes")
    assert report["summary"]["passed"] > 50, "checkov must have seen the Deployment and friends"
    assert _failures(report) == []


def test_every_core_object_validates_strictly_against_the_kubernetes_schema(synth: Synth) -> None:
    objects = manifests(synth)
    kinds = {m["kind"] for m in objects}
    assert kinds - CUSTOM_KINDS >= {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Ingress",
        "ServiceAccount",
    }
    for manifest in (m for m in objects if m["kind"] not in CUSTOM_KINDS):
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)


def test_the_schema_check_catches_a_misspelt_field(synth: Synth) -> None:
    (deployment,) = (m for m in manifests(synth) if m["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.31", strict=True)


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
