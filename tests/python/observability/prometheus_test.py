"""A real Prometheus (Debian's package) scrapes a real bert_api process; the rules' queries return
sane data.

Bounded: a few dozen requests to 127.0.0.1 and a Prometheus on 127.0.0.1, stopped at the end.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from bert_api.metrics import LATENCY_BUCKETS
from bert_api.testing import RunningServer, free_port, run_server
from bert_runtime.testutil.models import TINY_BERT_MLM
from infra_cdktf.chart_values import prometheus_adapter_values
from observability.dashboard_queries import is_service_query, panel_queries

PROMETHEUS = shutil.which("prometheus")
RULES = Path("deploy/prometheus/bert-inference.rules.yml").resolve()
POD_LABELS = {"namespace": "bert-inference", "pod": "bert-inference-0"}
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus missing: .ci/run installs Debian's prometheus"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server({"MODEL_NAME": str(TINY_BERT_MLM)}, tmp_path_factory.mktemp("api")) as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert PROMETHEUS is not None
    workdir = tmp_path_factory.mktemp("prometheus")
    target = server.url.removeprefix("http://")
    (workdir / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n"
        # The labels the Prometheus Operator gives a ServiceMonitor target (namespace, pod).
        f"  - job_name: bert-inference\n    static_configs: [{{targets: ['{target}'], "
        f"labels: {{namespace: {POD_LABELS['namespace']}, pod: {POD_LABELS['pod']}}}}}]\n"
    )
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, "prometheus ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _wait(condition: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"waited {timeout}s for {what}")


def _query(prometheus: str, expr: str) -> list[float]:
    body = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", body
    return [float(sample["value"][1]) for sample in body["data"]["result"]]


def _query_until(prometheus: str, expr: str, accept: object, what: str) -> list[float]:
    found: list[float] = []

    def check() -> bool:
        nonlocal found
        found = _query(prometheus, expr)
        return bool(found) and bool(accept(found))  # type: ignore[operator]

    try:
        _wait(check, f"{what} ({expr})")
    except TimeoutError as error:
        # Say what Prometheus had, so a failure explains itself.
        raw: dict[str, object] = {
            q: _query(prometheus, q) for q in ("up", "inference_requests_total")
        }
        samples = httpx.get(
            f"{prometheus}/api/v1/query",
            params={"query": 'inference_requests_total{status="200"}[3m]'},
            timeout=10,
        ).json()["data"]["result"]
        raw["samples"] = samples[0]["values"] if samples else []
        raise TimeoutError(f"{error}; last value {found}; {raw}") from None
    return found


def test_rules_and_service_queries_return_sane_values(
    server: RunningServer, prometheus: str
) -> None:
    # Traffic starts only after the first scrape and spans several scrapes, so counters are seen
    # rising.
    assert _query_until(prometheus, 'up{job="bert-inference"}', lambda v: v == [1.0], "target up")
    latencies = []
    for i in range(30):
        started = time.perf_counter()
        response = httpx.post(f"{server.url}/embed", json={"inputs": [f"text number {i}"] * 4})
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200
        time.sleep(0.15)
    rate = _query_until(
        prometheus, "sum(bert:inference_requests:rate1m)", lambda v: v[0] > 0, "request rate"
    )
    assert rate[0] > 0
    errors = _query_until(
        prometheus, "bert:inference_error_ratio:rate5m", lambda v: True, "error ratio"
    )
    assert errors == [0.0]
    (p95,) = _query_until(
        prometheus, "bert:inference_latency_seconds:p95_5m", lambda v: v[0] > 0, "p95"
    )
    # A histogram quantile lies within the bucket holding the observed latencies: above 0, at most
    # the
    # first bucket bound above the slowest request the client saw.
    ceiling = next(b for b in LATENCY_BUCKETS if b >= max(latencies))
    assert 0 < p95 <= ceiling
    (saturation,) = _query_until(
        prometheus, "bert:inference_queue_saturation:ratio", lambda v: True, "queue saturation"
    )
    assert 0 <= saturation < 0.8
    _check_dashboard_service_queries(prometheus, ceiling, errors_expected=False)

    for _ in range(20):
        assert httpx.post(f"{server.url}/embed", json={"inputs": []}).status_code == 422
        time.sleep(0.15)
    ratio = _query_until(
        prometheus,
        "bert:inference_error_ratio:rate5m",
        lambda v: v[0] > 0,
        "error ratio after bad requests",
    )
    assert 0 < ratio[0] < 1
    by_type = _query_until(
        prometheus,
        'sum(inference_errors_total{type="invalid_input"})',
        lambda v: v[0] >= 20,
        "errors",
    )
    assert by_type[0] >= 20
    _check_dashboard_service_queries(prometheus, ceiling, errors_expected=True)
    _check_rule_expressions(prometheus)


def _check_rule_expressions(prometheus: str) -> None:
    """
    Every rule over the service's series evaluates on the real data: recording rules return a
    value; of the alerts, only the error-rate one holds (a third of the requests were bad).
    """
    rules = yaml.safe_load(RULES.read_text())
    holding = {"BertInferenceHighErrorRate"}
    checked = 0
    for rule in (rule for group in rules["groups"] for rule in group["rules"]):
        expr = rule["expr"]
        if not (is_service_query(expr) or 'job="bert-inference"' in expr):
            continue  # GPU and Kubernetes series exist only in a cluster (dashboard_test.py)
        checked += 1
        if "record" in rule:
            assert _query(prometheus, expr), f"{rule['record']} returned nothing"
        elif rule["alert"] in holding:
            assert _query(prometheus, expr), f"{rule['alert']} should hold"
        else:
            assert _query(prometheus, expr) == [], f"{rule['alert']} should not hold"
    assert checked >= 8


def _check_dashboard_service_queries(
    prometheus: str, latency_ceiling: float, *, errors_expected: bool
) -> None:
    """
    Every dashboard query over the service's own metrics, as Grafana sends it, returns data in the
    range the traffic sent allows.
    """

    def seconds(values: list[float]) -> bool:
        return all(0 <= x <= latency_ceiling for x in values)

    def positive_seconds(values: list[float]) -> bool:
        return all(0 < x <= latency_ceiling for x in values)

    # Keyed by panel and legend; each request sent 4 equal texts, one at a time.
    sane: dict[tuple[str, str], Callable[[list[float]], bool]] = {
        ("Requests per second", "{{status}}"): lambda v: sum(v) > 0 and min(v) >= 0,
        ("Error rate", "errors"): (
            (lambda v: 0 < v[0] < 1) if errors_expected else (lambda v: v == [0.0])
        ),
        ("Average latency", "mean"): positive_seconds,
        ("p95 latency", "p95"): positive_seconds,
        # One series per bucket bound and +Inf; the requests landed in some.
        ("Latency distribution", "{{le}}"): lambda v: len(v) == len(LATENCY_BUCKETS) + 1
        and max(v) > 0,
        ("Throughput", "sequences/s"): lambda v: v[0] > 0,
        ("Throughput", "tokens/s"): lambda v: v[0] > 0,
        ("Active requests", "active"): lambda v: v == [0.0],
        ("Queue depth", "waiting"): lambda v: v == [0.0],
        ("Queue depth", "capacity"): lambda v: v[0] >= 4,
        ("Queue wait p95", "p95"): seconds,
        ("Batch size", "mean"): lambda v: 1 <= v[0] <= 4,
        ("Batch size", "p95"): lambda v: 2 < v[0] <= 4,
        ("Padding ratio", "mean"): lambda v: 1 <= v[0] < 3,
        ("Batch execution time p95", "p95"): positive_seconds,
        ("Model load time", "load"): lambda v: 0 < v[0] < 300,
        ("Ready replicas", "ready"): lambda v: v == [1.0],
    }
    service = [query for query in panel_queries() if is_service_query(query.expr)]
    assert {(q.panel, q.legend) for q in service} == set(sane), "every service query needs a check"
    # The gauges hold what the latest scrape saw, which may be from before the last request ended
    # (CI flake: "Active requests" = [1.0]). Wait for a scrape after it; one that stays above 0
    # (a request never counted out) still fails here, by timing out.
    _query_until(
        prometheus, "sum(inference_active_requests)", lambda v: v == [0.0], "the traffic to end"
    )
    for query in service:
        values = _query_until(prometheus, query.expr, lambda v: True, query.panel)
        assert sane[(query.panel, query.legend)](values), f"{query.panel}: {query.expr} = {values}"


def adapter_query(template: str, series: str) -> str:
    """A prometheus-adapter query as the adapter sends it for one pod of the HPA's target."""
    matchers = f'namespace="{POD_LABELS["namespace"]}",pod=~"{POD_LABELS["pod"]}"'
    return (
        template.replace("<<.Series>>", series)
        .replace("<<.LabelMatchers>>", matchers)
        .replace("<<.GroupBy>>", "pod")
    )


def test_the_autoscalers_metrics_resolve_to_one_value_per_pod(prometheus: str) -> None:
    """
    The HPA's metrics as the platform stack's prometheus-adapter rules fetch them, against the
    real service's series: each rule's series exists and its query answers for the pod.
    """
    rules = prometheus_adapter_values()["rules"]["custom"]
    assert rules
    for rule in rules:
        series = rule["name"]["as"]
        assert _query_until(prometheus, rule["seriesQuery"], lambda v: True, series)
        body = httpx.get(
            f"{prometheus}/api/v1/query",
            params={"query": adapter_query(rule["metricsQuery"], series)},
            timeout=10,
        ).json()
        assert body["status"] == "success", body
        (sample,) = body["data"]["result"]
        assert sample["metric"] == {"pod": POD_LABELS["pod"]}
        assert float(sample["value"][1]) >= 0
