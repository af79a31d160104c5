"""
The Grafana dashboard: every panel the seed had plus the batching panels, the datasource as a
variable, units and thresholds, PromQL that promtool parses, cluster queries that use only what
the exporters publish, and JSON that type-checks against Grafana's published schema.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from observability.dashboard_queries import (
    DASHBOARD,
    is_service_query,
    label_names,
    load_dashboard,
    metric_names,
    panel_queries,
    panels,
)

GRAFANA_DIR = Path("deploy/grafana")
RULES = Path("deploy/prometheus/bert-inference.rules.yml")
PROMTOOL = shutil.which("promtool")
NPM = shutil.which("npm")
SEED_PANELS = {
    "Average latency",
    "p95 latency",
    "Requests per second",
    "Error rate",
    "Latency distribution",
    "Throughput",
    "GPU utilization",
    "GPU memory",
    "GPU temperature",
    "GPU power",
    "Pod CPU",
    "Pod memory",
    "HPA replicas",
    "Pod restarts",
}
ADDED_PANELS = {"Queue depth", "Batch size", "Padding ratio"}

# Metric and label names the in-cluster exporters publish, from their documentation:
# dcgm-exporter etc/default-counters.csv (labels: gpu, UUID, device, modelName, Hostname, and
# namespace/pod/container with Kubernetes pod mapping); kube-state-metrics docs/metrics
# (workload/horizontalpodautoscaler-metrics.md, workload/pod-metrics.md,
# workload/deployment-metrics.md; v2.20.0, which kube-prometheus-stack 88.5.3 runs, names an
# extended resource such as nvidia.com/gpu `nvidia_com_gpu`); cAdvisor docs/storage/prometheus.md
# (as scraped through the kubelet, with namespace/pod/container); cert-manager v1.21.1
# internal/collectors/certificate_collector.go.
EXPORTER_METRICS = {
    "dcgm-exporter": {
        "DCGM_FI_DEV_SM_CLOCK",
        "DCGM_FI_DEV_MEM_CLOCK",
        "DCGM_FI_DEV_MEMORY_TEMP",
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "DCGM_FI_DEV_ENC_UTIL",
        "DCGM_FI_DEV_DEC_UTIL",
        "DCGM_FI_DEV_XID_ERRORS",
        "DCGM_FI_DEV_FB_FREE",
        "DCGM_FI_DEV_FB_USED",
    },
    "kube-state-metrics": {
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "kube_horizontalpodautoscaler_spec_min_replicas",
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_status_desired_replicas",
        "kube_horizontalpodautoscaler_status_condition",
        "kube_pod_container_status_restarts_total",
        "kube_pod_container_status_ready",
        "kube_pod_status_phase",
        "kube_pod_status_unschedulable",
        "kube_pod_container_resource_requests",
        "kube_deployment_status_replicas_available",
    },
    "cert-manager": {"certmanager_certificate_expiration_timestamp_seconds"},
    "cadvisor": {
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "container_memory_rss",
        "container_cpu_cfs_throttled_periods_total",
    },
    "prometheus": {"up"},
}
EXPORTER_LABELS = {
    "dcgm-exporter": {"gpu", "UUID", "device", "modelName", "Hostname", "namespace", "pod"},
    "kube-state-metrics": {
        "namespace",
        "pod",
        "container",
        "horizontalpodautoscaler",
        "deployment",
        "resource",
    },
    "cert-manager": {"name", "namespace", "issuer_name", "issuer_kind", "issuer_group"},
    "cadvisor": {"namespace", "pod", "container", "image", "name", "cpu"},
    "prometheus": {"job", "instance", "namespace", "pod"},
}


def _exporter_of(metric: str) -> str | None:
    return next((name for name, known in EXPORTER_METRICS.items() if metric in known), None)


def _rule_exprs() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_every_seed_panel_and_the_batching_panels_are_there() -> None:
    titles = [panel["title"] for panel in panels(load_dashboard())]
    assert len(titles) == len(set(titles)), "panel titles must be unique"
    assert SEED_PANELS | ADDED_PANELS <= set(titles)


def test_every_panel_queries_the_datasource_variable_with_a_unit_and_thresholds() -> None:
    dashboard = load_dashboard()
    (variable,) = (v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    for panel in panels(dashboard):
        sources = [panel["datasource"], *(target["datasource"] for target in panel["targets"])]
        assert all(source == {"type": "prometheus", "uid": "${datasource}"} for source in sources)
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["unit"], panel["title"]
        steps = defaults["thresholds"]["steps"]
        assert steps[0]["value"] is None, f"{panel['title']}: the base step has no value"
        values = [step["value"] for step in steps[1:]]
        assert values == sorted(values), f"{panel['title']}: thresholds out of order"
        assert panel["targets"], panel["title"]


def test_objective_panels_share_the_alerts_thresholds() -> None:
    """
    The red line on a panel is where its alert fires, so the dashboard and the pager agree.
    """
    thresholds = {
        panel["title"]: [
            step["value"] for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        ]
        for panel in panels(load_dashboard())
    }
    rules = RULES.read_text()
    assert thresholds["Error rate"][-1] == 0.05 and "> 0.05" in rules
    assert thresholds["p95 latency"][-1] == 0.5 and "> 0.5" in rules
    assert thresholds["GPU memory"][-1] == 0.9 and "> 0.9" in rules


@pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: .ci/run installs Debian's prometheus"
)
def test_promtool_parses_every_panel_query(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    queries = panel_queries()
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": query.expr}
                    for i, query in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(queries)} rules found" in done.stdout


def test_cluster_queries_use_only_what_the_exporters_publish() -> None:
    exprs = [query.expr for query in panel_queries()] + _rule_exprs()
    cluster = [expr for expr in exprs if not is_service_query(expr)]
    assert len(cluster) >= 10, "GPU, pod and HPA panels and the cluster alerts"
    for expr in cluster:
        names = metric_names(expr)
        exporters = {_exporter_of(name) for name in names}
        assert None not in exporters, f"unknown metric in {expr!r}: {names}"
        allowed = set().union(*(EXPORTER_LABELS[e] for e in exporters if e is not None))
        assert label_names(expr) <= allowed, f"{expr!r} uses labels its exporter lacks"


def test_the_metric_name_reader_finds_names_and_skips_functions_and_labels() -> None:
    expr = (
        'sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="x", container!=""}[1m]))'
        " / clamp_min(max(kube_pod_status_phase) or vector(0), 1e-9)"
    )
    assert metric_names(expr) == {"container_cpu_usage_seconds_total", "kube_pod_status_phase"}
    assert label_names(expr) == {"pod", "namespace", "container"}
    assert not is_service_query(expr)
    assert is_service_query("sum(rate(inference_requests_total[1m])) / bert:x:rate5m")


def _node_modules() -> Path:
    """
    @grafana/schema and typescript as package-lock.json pins them, installed once per lockfile
    into the user's cache (the npm registry is reachable from CI).
    """
    lock = (GRAFANA_DIR / "package-lock.json").read_bytes()
    cache_root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    target = cache_root / "bert-serve" / "grafana-schema" / hashlib.sha256(lock).hexdigest()[:16]
    if not (target / "node_modules" / "typescript").is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent))
        for name in ("package.json", "package-lock.json"):
            shutil.copy(GRAFANA_DIR / name, staging / name)
        assert NPM is not None
        done = subprocess.run(
            [NPM, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=staging,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        try:
            staging.rename(target)
        except OSError:  # another run installed it first
            shutil.rmtree(staging)
    return target / "node_modules"


def _typecheck(dashboard: dict[str, Any], workdir: Path) -> subprocess.CompletedProcess[str]:
    shutil.copy(GRAFANA_DIR / "grafana-json.ts", workdir / "grafana-json.ts")
    (workdir / "node_modules").symlink_to(_node_modules())
    # `satisfies` keeps excess-property checks, so a misspelt field fails too.
    (workdir / "dashboard.ts").write_text(
        "import type { DashboardJson } from './grafana-json.js';\n"
        f"export const dashboard = {json.dumps(dashboard, indent=1)} satisfies DashboardJson;\n"
    )
    tsc = workdir / "node_modules" / "typescript" / "bin" / "tsc"
    command = ["node", str(tsc), "--noEmit", "--strict", "--target", "es2022"]
    command += ["--module", "nodenext", "--moduleResolution", "nodenext", "dashboard.ts"]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True)


needs_npm = pytest.mark.skipif(
    NPM is None or shutil.which("node") is None,
    reason="node and npm missing: .ci/run installs them",
)


@needs_npm
def test_the_dashboard_type_checks_against_grafanas_published_schema(tmp_path: Path) -> None:
    done = _typecheck(json.loads(DASHBOARD.read_text()), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_npm
def test_the_type_check_rejects_a_dashboard_grafana_would_not_read(tmp_path: Path) -> None:
    dashboard = load_dashboard()
    first = panels(dashboard)[0]
    first["fieldConfig"]["defaults"]["thresholds"]["mode"] = "absolut"
    first["gridPos"]["width"] = 3
    done = _typecheck(dashboard, tmp_path)
    assert done.returncode != 0
    assert '"absolut"' in done.stdout and "'\"width\"' does not exist" in done.stdout, done.stdout
