"""
Every value the app gives a chart is a key that chart version reads (chart_keys.py), and the
scheduling those values produce is the one the cluster needs: the device plugin's effective
affinity matches the GPU pool's labels, the GPU DaemonSets tolerate its taint, and the platform
stays off the GPU nodes.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra_cdktf import chart_keys, chart_values, charts, contract
from infra_cdktf.stacks.platform import chart_values_by_release
from infra_cdktf.synth_testing import settings_for_tests, synthesize

Synth = dict[str, dict[str, Any]]

# The device plugin chart's default affinity (nvidia-device-plugin 0.20.0 values.yaml): any one
# of these node labels. NFD, which would set the first two, is off (nfd.enabled / gfd.enabled).
DEVICE_PLUGIN_DEFAULT_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {
                            "key": "feature.node.kubernetes.io/pci-10de.present",
                            "operator": "In",
                            "values": ["true"],
                        }
                    ]
                },
                {
                    "matchExpressions": [
                        {
                            "key": "feature.node.kubernetes.io/cpu-model.vendor_id",
                            "operator": "In",
                            "values": ["NVIDIA"],
                        }
                    ]
                },
                {
                    "matchExpressions": [
                        {"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]}
                    ]
                },
            ]
        }
    }
}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(settings_for_tests(), tmp_path_factory.mktemp("synth"))


def _released_values(synth: Synth, chart: charts.Chart) -> dict[str, Any]:
    release = synth["platform"]["resource"]["helm_release"][chart.release]
    values: dict[str, Any] = yaml.safe_load(release["values"][0])
    return values


def helm_merge(default: Any, override: Any) -> Any:
    """Helm's coalescing of values: maps merge key by key, anything else (lists too) replaces."""
    if isinstance(default, dict) and isinstance(override, dict):
        merged = dict(default)
        for key, value in override.items():
            merged[key] = helm_merge(default.get(key), value) if key in default else value
        return merged
    return override


def _node_matches(affinity: dict[str, Any], labels: dict[str, str]) -> bool:
    """Does a node with `labels` satisfy the required node affinity (terms ORed, exprs ANDed)?"""
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]

    def holds(expr: dict[str, Any]) -> bool:
        assert expr["operator"] == "In", "only In is used by the chart and the app"
        return labels.get(expr["key"]) in expr["values"]

    return any(all(holds(expr) for expr in term["matchExpressions"]) for term in terms)


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, str]) -> bool:
    for toleration in tolerations:
        if toleration.get("key") not in (None, taint["key"]):
            continue
        if toleration.get("effect") not in (None, taint["effect"]):
            continue
        if toleration.get("operator") == "Exists" or toleration.get("value") == taint["value"]:
            return True
    return False


def _pools(synth: Synth) -> dict[str, dict[str, Any]]:
    pools = synth["cluster"]["resource"]["linode_lke_cluster"]["cluster"]["pool"]
    return {pool["labels"][contract.POOL_LABEL]: pool for pool in pools}


def test_every_chart_value_is_a_key_checked_for_that_chart_version(synth: Synth) -> None:
    for chart in charts.ALL_CHARTS:
        values = _released_values(synth, chart)
        assert chart_keys.unchecked_keys(chart.chart, chart.version, values) == [], chart.release


def test_a_version_bump_or_an_unread_key_fails_the_check() -> None:
    values = chart_values.device_plugin_values()
    (missing,) = chart_keys.unchecked_keys("nvidia-device-plugin", "0.21.0", values)
    assert "no checked-key list" in missing
    assert chart_keys.unchecked_keys(
        "nvidia-device-plugin", "0.20.0", {**values, "kubernetesDCGM": True}
    ) == ["kubernetesDCGM"]
    # The old, ignored dcgm-exporter value is gone.
    assert "kubernetesDCGM" not in chart_values.dcgm_exporter_values()


def test_every_pin_is_exact_dated_and_listed() -> None:
    for chart in charts.ALL_CHARTS:
        assert chart.version.lstrip("v").count(".") == 2, chart.release
        assert datetime.date.fromisoformat(chart.released) >= datetime.date(2026, 1, 1)
        assert (chart.chart, chart.version) in chart_keys.CHECKED_KEYS
    listed = {chart for chart, _ in chart_keys.CHECKED_KEYS}
    assert listed == {chart.chart for chart in charts.ALL_CHARTS}, "a stale list"


def test_device_plugin_effective_affinity_matches_the_gpu_pool(synth: Synth) -> None:
    gpu_labels = _pools(synth)[contract.GPU_POOL]["labels"]
    values = _released_values(synth, charts.NVIDIA_DEVICE_PLUGIN)
    effective = helm_merge(DEVICE_PLUGIN_DEFAULT_AFFINITY, values["affinity"])
    assert _node_matches(effective, gpu_labels)
    assert not _node_matches(effective, _pools(synth)[contract.PLATFORM_POOL]["labels"])
    # The chart's default alone would schedule nothing on this cluster (the defect this fixes).
    assert not _node_matches(DEVICE_PLUGIN_DEFAULT_AFFINITY, gpu_labels)


def test_gpu_daemonsets_tolerate_the_gpu_taint_and_select_the_gpu_pool(synth: Synth) -> None:
    (taint,) = _pools(synth)[contract.GPU_POOL]["taint"]
    for chart in (charts.NVIDIA_DEVICE_PLUGIN, charts.DCGM_EXPORTER):
        values = _released_values(synth, chart)
        assert _tolerates(values["tolerations"], taint), chart.release
    assert _released_values(synth, charts.DCGM_EXPORTER)["nodeSelector"] == {
        contract.POOL_LABEL: contract.GPU_POOL
    }
    assert not _tolerates([], taint)
    assert not _tolerates([{"key": "other", "operator": "Exists"}], taint)


def test_platform_components_are_pinned_to_the_platform_pool(synth: Synth) -> None:
    platform = {contract.POOL_LABEL: contract.PLATFORM_POOL}
    stack = _released_values(synth, charts.KUBE_PROMETHEUS_STACK)
    selectors = [
        stack["prometheusOperator"]["nodeSelector"],
        stack["prometheusOperator"]["admissionWebhooks"]["patch"]["nodeSelector"],
        stack["prometheus"]["prometheusSpec"]["nodeSelector"],
        stack["alertmanager"]["alertmanagerSpec"]["nodeSelector"],
        stack["kube-state-metrics"]["nodeSelector"],
        stack["grafana"]["nodeSelector"],
        _released_values(synth, charts.PROMETHEUS_ADAPTER)["nodeSelector"],
        _released_values(synth, charts.CERT_MANAGER)["global"]["nodeSelector"],
        _released_values(synth, charts.NGINX_INGRESS)["controller"]["nodeSelector"],
    ]
    assert all(selector == platform for selector in selectors)
    # None of them tolerates the GPU taint, so none can land on a GPU node.
    assert "tolerations" not in json.dumps([stack, _released_values(synth, charts.NGINX_INGRESS)])


def test_export_carries_the_same_values_as_the_helm_releases(synth: Synth, tmp_path: Path) -> None:
    for chart, values in chart_values_by_release(settings_for_tests()).items():
        assert _released_values(synth, chart) == json.loads(json.dumps(values)), chart.release
