"""`functional`: health, one inference, a batch of 4, and latency over 10 sequential requests."""

from __future__ import annotations

from loadkit.checks import CheckResult, SuiteReport
from loadkit.http_checks import Client, check_health, check_inference
from loadkit.latency import summarize_latencies

TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "bert turns sentences into vectors",
    "serving models on gpus is fast",
    "hello world",
]


def run_functional(
    endpoint: str, model: str = "bert", timeout_s: float = 30.0, api_key: str | None = None
) -> SuiteReport:
    client = Client(endpoint, timeout_s, api_key)
    checks = [
        check_health(client),
        check_inference(client, model, TEXTS[:1], "single inference"),
        check_inference(client, model, TEXTS, "batch of 4"),
        _sequential_latency(client, model, 10),
    ]
    return SuiteReport("functional", endpoint, checks)


def _sequential_latency(client: Client, model: str, count: int) -> CheckResult:
    results = [check_inference(client, model, TEXTS[:1], "sequential") for _ in range(count)]
    failures = [reason for result in results for reason in result.reasons]
    latencies = [r.details["latency_ms"] for r in results if "latency_ms" in r.details]
    details = {}
    if latencies:
        summary = summarize_latencies(latencies)
        details = {
            "requests": count,
            "mean_ms": round(summary.mean_ms, 2),
            "p50_ms": round(summary.p50_ms, 2),
            "p95_ms": round(summary.p95_ms, 2),
            "max_ms": round(summary.max_ms, 2),
        }
    name = f"latency over {count} sequential requests"
    return CheckResult(name, not failures, failures[:3], details)
