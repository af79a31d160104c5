"""The load report: typed, serialized to JSON with a documented schema (REPORT_SCHEMA)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from loadkit.latency import LatencySummary, summarize_latencies
from loadkit.outcomes import Outcome


@dataclass(frozen=True)
class Thresholds:
    """Limits that make a run fail (exit code 1) when missed; None means not checked."""

    max_p95_ms: float | None = None
    max_error_rate: float | None = None
    min_rps: float | None = None


@dataclass(frozen=True)
class LoadReport:
    endpoint: str
    route: str
    concurrency: int
    planned_requests: int | None
    completed: int
    succeeded: int
    failed: int
    duration_s: float
    throughput_rps: float
    success_rate: float
    error_rate: float
    latency_ms: LatencySummary | None
    errors: dict[str, int]
    thresholds: Thresholds = field(default_factory=Thresholds)
    violations: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["passed"] = self.passed
        return body

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


def build_report(
    *,
    endpoint: str,
    route: str,
    concurrency: int,
    planned_requests: int | None,
    outcomes: Sequence[Outcome],
    duration_s: float,
    thresholds: Thresholds,
) -> LoadReport:
    """Aggregate outcomes; latency percentiles are over every completed request."""
    completed = len(outcomes)
    succeeded = sum(1 for o in outcomes if o.ok)
    errors = Counter(o.category for o in outcomes if not o.ok)
    latency = summarize_latencies([o.latency_ms for o in outcomes]) if outcomes else None
    rps = completed / duration_s if duration_s > 0 else 0.0
    error_rate = (completed - succeeded) / completed if completed else 0.0
    violations = []
    if thresholds.max_p95_ms is not None and (
        latency is None or latency.p95_ms > thresholds.max_p95_ms
    ):
        p95 = "n/a" if latency is None else f"{latency.p95_ms:.1f}"
        violations.append(f"p95 latency {p95} ms > {thresholds.max_p95_ms:g} ms")
    if thresholds.max_error_rate is not None and error_rate > thresholds.max_error_rate:
        violations.append(f"error rate {error_rate:.4f} > {thresholds.max_error_rate:g}")
    if thresholds.min_rps is not None and rps < thresholds.min_rps:
        violations.append(f"throughput {rps:.1f} req/s < {thresholds.min_rps:g} req/s")
    return LoadReport(
        endpoint=endpoint,
        route=route,
        concurrency=concurrency,
        planned_requests=planned_requests,
        completed=completed,
        succeeded=succeeded,
        failed=completed - succeeded,
        duration_s=duration_s,
        throughput_rps=rps,
        success_rate=succeeded / completed if completed else 0.0,
        error_rate=error_rate,
        latency_ms=latency,
        errors={str(k): v for k, v in sorted(errors.items())},
        thresholds=thresholds,
        violations=violations,
    )


_NUMBER = {"type": "number", "minimum": 0}
_OPTIONAL_NUMBER = {"type": ["number", "null"]}
REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "loadkit load report",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "endpoint",
        "route",
        "concurrency",
        "planned_requests",
        "completed",
        "succeeded",
        "failed",
        "duration_s",
        "throughput_rps",
        "success_rate",
        "error_rate",
        "latency_ms",
        "errors",
        "thresholds",
        "violations",
        "passed",
    ],
    "properties": {
        "endpoint": {"type": "string"},
        "route": {"type": "string"},
        "concurrency": {"type": "integer", "minimum": 1},
        "planned_requests": {"type": ["integer", "null"], "minimum": 1},
        "completed": {"type": "integer", "minimum": 0},
        "succeeded": {"type": "integer", "minimum": 0},
        "failed": {"type": "integer", "minimum": 0},
        "duration_s": _NUMBER,
        "throughput_rps": _NUMBER,
        "success_rate": {"type": "number", "minimum": 0, "maximum": 1},
        "error_rate": {"type": "number", "minimum": 0, "maximum": 1},
        "latency_ms": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "required": [
                "count",
                "mean_ms",
                "min_ms",
                "p50_ms",
                "p90_ms",
                "p95_ms",
                "p99_ms",
                "max_ms",
            ],
            "properties": {
                "count": {"type": "integer", "minimum": 1},
                **{
                    k: _NUMBER
                    for k in ("mean_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")
                },
            },
        },
        "errors": {
            "type": "object",
            "description": "failed requests by category: "
            "http_<status>, timeout, connection, other:<type>",
            "additionalProperties": {"type": "integer", "minimum": 1},
        },
        "thresholds": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                k: _OPTIONAL_NUMBER for k in ("max_p95_ms", "max_error_rate", "min_rps")
            },
        },
        "violations": {"type": "array", "items": {"type": "string"}},
        "passed": {"type": "boolean"},
    },
}
