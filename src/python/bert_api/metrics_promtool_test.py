"""
`promtool check metrics` finds nothing to complain about in /metrics (after successes and errors).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from bert_api.testing import run_server
from bert_runtime.testutil.models import TINY_BERT_MLM

PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: .ci/run installs Debian's prometheus"
)
def test_promtool_accepts_the_metrics(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    with run_server({"MODEL_NAME": str(TINY_BERT_MLM)}, tmp_path) as server:
        httpx.post(f"{server.url}/embed", json={"inputs": ["a", "b"]})
        httpx.post(f"{server.url}/embed", json={"inputs": []})
        httpx.post(f"{server.url}/fill-mask", json={"inputs": "a [MASK]"})
        exposition = httpx.get(f"{server.url}/metrics").text
    assert "inference_requests_total" in exposition
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "" and done.stderr.strip() == "", done.stdout + done.stderr
