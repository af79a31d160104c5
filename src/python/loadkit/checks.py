"""Pass/fail checks with reasons, shared by the smoke and functional suites."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class CheckResult:
    name: str
    passed: bool
    reasons: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class SuiteReport:
    suite: str
    endpoint: str
    checks: list[CheckResult]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def to_json(self) -> str:
        body = asdict(self)
        body["passed"] = self.passed
        return json.dumps(body, indent=2, sort_keys=True, default=str) + "\n"

    def summary(self) -> str:
        lines = [f"{self.suite} against {self.endpoint}:"]
        for check in self.checks:
            mark = "PASS" if check.passed else "FAIL"
            why = f" ({'; '.join(check.reasons)})" if check.reasons else ""
            lines.append(f"  {mark} {check.name}{why}")
        lines.append("passed" if self.passed else "FAILED")
        return "\n".join(lines)
