"""
The autoscaler scales on metrics that exist, so it scales down as well as up.

Each metric the HPA names must have a provider the app installs: a Pods or Object metric, a
prometheus-adapter rule that serves it under that name (custom.metrics.k8s.io); a Resource
metric, metrics-server or an adapter `rules.resource` (metrics.k8s.io; LKE ships neither). The
series the adapter reads are gauges bert_api publishes, labelled with namespace and pod by the
Prometheus Operator (v0.93.0 pkg/prometheus/promcfg.go, generateServiceMonitorConfig). (Test-only
dependency on bert_api, as in contract_test.py.)

The HPA's own rule (kubernetes.io, "Horizontal Pod Autoscaling", algorithm details): the
desired count is the largest over its metrics of ceil(current * value / target); when any metric
is unavailable and the others suggest scaling down, it does not scale.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml

from bert_api.metrics import ServiceMetrics
from infra_cdktf import charts, contract
from infra_cdktf.synth_testing import manifests, settings_for_tests, synthesize

Synth = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(settings_for_tests(), tmp_path_factory.mktemp("synth"))


def _hpa(synth: Synth) -> dict[str, Any]:
    (hpa,) = (m for m in manifests(synth) if m["kind"] == "HorizontalPodAutoscaler")
    return hpa


def provided_metrics(synth: Synth) -> dict[str, set[str]]:
    """Metric names each metrics API serves, from the releases the platform stack installs."""
    releases = synth["platform"]["resource"]["helm_release"]
    provided: dict[str, set[str]] = {"Pods": set(), "Object": set(), "Resource": set()}
    if "metrics-server" in releases:
        provided["Resource"] |= {"cpu", "memory"}
    adapter = releases.get(charts.PROMETHEUS_ADAPTER.release)
    if adapter is not None:
        rules = yaml.safe_load(adapter["values"][0])["rules"]
        names = {rule["name"]["as"] for rule in rules.get("custom", [])}
        provided["Pods"] |= names
        provided["Object"] |= names
        if rules.get("resource"):
            provided["Resource"] |= {"cpu", "memory"}
    return provided


def hpa_metric_names(hpa: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for metric in hpa["spec"]["metrics"]:
        kind = metric["type"]
        spec = metric[kind[0].lower() + kind[1:]]
        found.append((kind, spec["metric"]["name"] if "metric" in spec else spec["name"]))
    return found


def desired_replicas(hpa: dict[str, Any], current: int, values: dict[str, float]) -> int:
    """The HPA's decision for per-pod average `values` (a missing name: metric unavailable)."""
    proposals = []
    for (_, name), metric in zip(hpa_metric_names(hpa), hpa["spec"]["metrics"], strict=True):
        if name not in values:
            continue
        target = float(metric["pods"]["target"]["averageValue"])
        proposals.append(math.ceil(current * values[name] / target))
    if not proposals:
        return current
    wanted = max(proposals)
    if len(proposals) < len(hpa["spec"]["metrics"]) and wanted < current:
        return current  # a metric is missing: never scale down on the others
    low, high = int(hpa["spec"]["minReplicas"]), int(hpa["spec"]["maxReplicas"])
    return min(max(wanted, low), high)


def test_every_hpa_metric_has_a_provider_installed_by_the_app(synth: Synth) -> None:
    provided = provided_metrics(synth)
    names = hpa_metric_names(_hpa(synth))
    assert names, "the HPA scales on something"
    for kind, name in names:
        assert name in provided[kind], f"{kind} metric {name} has no provider in the cluster"


def test_the_hpa_scales_on_work_per_pod_not_cpu_or_memory(synth: Synth) -> None:
    names = dict((name, kind) for kind, name in hpa_metric_names(_hpa(synth)))
    assert names == {
        contract.QUEUE_DEPTH_METRIC: "Pods",
        contract.ACTIVE_REQUESTS_METRIC: "Pods",
    }


def test_the_adapted_series_are_gauges_bert_api_publishes() -> None:
    published = {metric.name: metric.type for metric in ServiceMetrics("bert").registry.collect()}
    for series in (contract.QUEUE_DEPTH_METRIC, contract.ACTIVE_REQUESTS_METRIC):
        assert published.get(series) == "gauge", series


def test_the_adapter_keeps_namespace_and_pod_so_pods_metrics_resolve(synth: Synth) -> None:
    adapter = synth["platform"]["resource"]["helm_release"][charts.PROMETHEUS_ADAPTER.release]
    for rule in yaml.safe_load(adapter["values"][0])["rules"]["custom"]:
        overrides = rule["resources"]["overrides"]
        assert overrides == {
            "namespace": {"resource": "namespace"},
            "pod": {"resource": "pod"},
        }
        assert "<<.LabelMatchers>>" in rule["metricsQuery"]
        assert "by (<<.GroupBy>>)" in rule["metricsQuery"]


def test_idle_pods_scale_down_and_busy_pods_scale_up(synth: Synth) -> None:
    hpa = _hpa(synth)
    idle = {contract.QUEUE_DEPTH_METRIC: 0.0, contract.ACTIVE_REQUESTS_METRIC: 0.5}
    assert desired_replicas(hpa, 3, idle) == hpa["spec"]["minReplicas"]
    busy = {contract.QUEUE_DEPTH_METRIC: 200.0, contract.ACTIVE_REQUESTS_METRIC: 20.0}
    assert desired_replicas(hpa, 1, busy) == 3
    # What the old HPA hit: one metric without a provider blocks every scale-down.
    assert desired_replicas(hpa, 3, {contract.QUEUE_DEPTH_METRIC: 0.0}) == 3


def test_a_resource_metric_without_metrics_server_is_caught(synth: Synth) -> None:
    hpa = _hpa(synth)
    broken = {
        **hpa,
        "spec": {
            **hpa["spec"],
            "metrics": [
                *hpa["spec"]["metrics"],
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                },
            ],
        },
    }
    provided = provided_metrics(synth)
    missing = [name for kind, name in hpa_metric_names(broken) if name not in provided[kind]]
    assert missing == ["cpu"]
