"""
The Prometheus rules pass promtool's checks and unit tests, and every alert has a runbook section.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path("deploy/prometheus/bert-inference.rules.yml")
RULE_TESTS = Path("deploy/prometheus/tests/bert-inference.rules.test.yml")
RUNBOOK = Path("docs/OPERATIONS.md")
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: .ci/run installs Debian's prometheus"
)


def _alerts() -> dict[str, str]:
    """
    Alert name -> runbook link, read from the rules file (each alert block has one runbook line).
    """
    text = RULES.read_text()
    names = re.findall(r"^\s+- alert: (\w+)$", text, re.M)
    links = re.findall(r"^\s+runbook: (\S+)$", text, re.M)
    assert names and len(names) == len(links), "every alert needs exactly one runbook annotation"
    return dict(zip(names, links, strict=True))


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_every_alert_fires_and_stays_silent_in_promtool_unit_tests() -> None:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        cwd=RULE_TESTS.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested == set(_alerts()), "an alert has no unit test"


def test_every_alert_links_to_a_runbook_section() -> None:
    anchors = {
        heading.strip().lower() for heading in re.findall(r"^## (\S+)$", RUNBOOK.read_text(), re.M)
    }
    for alert, link in _alerts().items():
        assert link == f"docs/OPERATIONS.md#{alert.lower()}"
        assert link.split("#")[1] in anchors, f"no runbook section for {alert}"
