"""
Read the Grafana dashboard's panel queries, so every test runs exactly what Grafana would.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARD = Path("deploy/grafana/dashboards/bert-inference.json")
# What Grafana substitutes before it sends a query; the tests do the same.
SUBSTITUTIONS = {"$__rate_interval": "1m", "$namespace": "bert-inference"}
PROMQL_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{([^}]*)\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_NUMBER = re.compile(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_IDENTIFIER = re.compile(r"[A-Za-z_:][\w:]*")


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel, with Grafana's variables already substituted."""

    panel: str
    unit: str
    legend: str
    expr: str


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every non-row panel, including panels nested in collapsed rows."""
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def substitute(expr: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def panel_queries(dashboard: dict[str, Any] | None = None) -> list[PanelQuery]:
    board = dashboard if dashboard is not None else load_dashboard()
    return [
        PanelQuery(
            panel=panel["title"],
            unit=panel["fieldConfig"]["defaults"]["unit"],
            legend=target.get("legendFormat", ""),
            expr=substitute(target["expr"]),
        )
        for panel in panels(board)
        for target in panel["targets"]
    ]


def metric_names(expr: str) -> set[str]:
    """
    Metric names a PromQL expression selects: identifiers that are not functions, keywords,
    label names or numbers.
    """
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function call
        if match.group() not in PROMQL_KEYWORDS:
            names.add(match.group())
    return names


def label_names(expr: str) -> set[str]:
    """Label names an expression matches on or groups by."""
    text = _STRING.sub('""', expr)
    labels = set()
    for matchers in _MATCHERS.findall(text):
        labels.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    for grouping in _GROUPING.findall(text):
        labels.update(name.strip() for name in grouping.split(",") if name.strip())
    return labels


def is_service_query(expr: str) -> bool:
    """Series the service itself exports (or rules record from them), as opposed to a cluster's."""
    return all(name.startswith(("inference_", "bert:")) for name in metric_names(expr))
