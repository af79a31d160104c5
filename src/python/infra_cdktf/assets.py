"""
Files the app ships into the cluster that live in deploy/ (one copy, shared with the tests that
check them): the Grafana dashboard and the Prometheus rules.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

DEPLOY_DIR_ENV = "BERT_SERVE_DEPLOY_DIR"
DASHBOARD = Path("grafana/dashboards/bert-inference.json")
RULES = Path("prometheus/bert-inference.rules.yml")


def deploy_dir() -> Path:
    """`$BERT_SERVE_DEPLOY_DIR`, else the `deploy/` folder of the repository around the cwd."""
    configured = os.environ.get(DEPLOY_DIR_ENV)
    if configured:
        return Path(configured)
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "deploy" / DASHBOARD).is_file():
            return folder / "deploy"
    raise FileNotFoundError(
        f"cannot find deploy/{DASHBOARD} above {Path.cwd()}; run from the repository or set "
        f"{DEPLOY_DIR_ENV}"
    )


def dashboard_json() -> str:
    return (deploy_dir() / DASHBOARD).read_text()


def prometheus_rules() -> dict[str, Any]:
    rules: dict[str, Any] = yaml.safe_load((deploy_dir() / RULES).read_text())
    return rules
