"""End to end: the loadkit CLI against a real bert_api server process on 127.0.0.1 (tiny model).

The CLI runs as a child process because Locust monkey-patches the interpreter with gevent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from bert_api.testing import RunningServer, run_server
from bert_runtime.testutil.models import TINY_BERT_MLM
from loadkit.fake_kube import fake_cluster, install_fake_kubectl, node, pod
from loadkit.report import REPORT_SCHEMA


def loadkit(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(sys.path)}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "loadkit.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server({"MODEL_NAME": str(TINY_BERT_MLM)}, tmp_path_factory.mktemp("srv")) as running:
        yield running


def test_functional_passes_every_scenario(server: RunningServer, tmp_path: Path) -> None:
    out = tmp_path / "functional.json"
    done = loadkit("functional", "--endpoint", server.url, "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["passed"] is True
    names = [check["name"] for check in report["checks"]]
    assert names == [
        "health",
        "single inference",
        "batch of 4",
        "latency over 10 sequential requests",
    ]
    assert report["checks"][2]["details"]["count"] == 4
    assert report["checks"][3]["details"]["requests"] == 10


def test_smoke_passes_and_reports_the_device(server: RunningServer, tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    done = loadkit("smoke", "--endpoint", server.url, "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    gpu = next(c for c in json.loads(out.read_text())["checks"] if c["name"] == "gpu detection")
    assert gpu["details"]["on_gpu"] is False


def test_smoke_expecting_a_gpu_fails_on_a_cpu_server(server: RunningServer) -> None:
    done = loadkit("smoke", "--endpoint", server.url, "--expect-gpu")
    assert done.returncode == 1
    assert "expected a GPU, the model runs on CPUExecutionProvider" in done.stdout


def test_load_reports_exactly_n_outcomes_in_the_documented_schema(
    server: RunningServer, tmp_path: Path
) -> None:
    out = tmp_path / "load.json"
    done = loadkit(
        "load",
        "--endpoint",
        server.url,
        "--requests",
        "60",
        "--concurrency",
        "4",
        "--mix",
        "single=2,batch=1,long=1",
        "--output",
        str(out),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    jsonschema.validate(report, REPORT_SCHEMA)
    assert report["completed"] == report["succeeded"] == 60
    assert report["errors"] == {}
    assert report["latency_ms"]["count"] == 60
    assert "[load]" in done.stderr, "no progress line"


def test_missed_thresholds_change_the_exit_code(server: RunningServer) -> None:
    passing = loadkit("load", "--endpoint", server.url, "--requests", "20", "--max-error-rate", "0")
    assert passing.returncode == 0, passing.stdout
    failing = loadkit(
        "load",
        "--endpoint",
        server.url,
        "--requests",
        "20",
        "--max-p95-ms",
        "0.001",
        "--min-rps",
        "1000000",
    )
    assert failing.returncode == 1
    assert "THRESHOLD MISSED: p95 latency" in failing.stdout
    assert "THRESHOLD MISSED: throughput" in failing.stdout


def test_overloaded_server_errors_are_counted_as_http_429(tmp_path: Path) -> None:
    env = {
        "MODEL_NAME": str(TINY_BERT_MLM),
        "BATCH_SIZE": "1",
        "MAX_QUEUE_SIZE": "2",
        "MAX_QUEUE_DELAY_MS": "0",
    }
    with run_server(env, tmp_path) as small:
        out = tmp_path / "load.json"
        done = loadkit(
            "load",
            "--endpoint",
            small.url,
            "--requests",
            "200",
            "--concurrency",
            "24",
            "--mix",
            "batch=1",
            "--max-error-rate",
            "0",
            "--output",
            str(out),
        )
    report = json.loads(out.read_text())
    assert done.returncode == 1, "errors above --max-error-rate must fail the run"
    assert report["completed"] == 200
    assert set(report["errors"]) == {"http_429"}
    assert report["succeeded"] + report["errors"]["http_429"] == 200


def test_connection_and_timeout_errors_are_categorized(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    refused = loadkit(
        "load",
        "--endpoint",
        f"http://127.0.0.1:{closed_port}",
        "--requests",
        "5",
        "--concurrency",
        "1",
        "--output",
        str(tmp_path / "refused.json"),
    )
    assert refused.returncode == 0  # no thresholds given
    assert json.loads((tmp_path / "refused.json").read_text())["errors"] == {"connection": 5}

    with _silent_server() as port:
        slow = loadkit(
            "load",
            "--endpoint",
            f"http://127.0.0.1:{port}",
            "--requests",
            "3",
            "--concurrency",
            "3",
            "--timeout",
            "0.5",
            "--output",
            str(tmp_path / "slow.json"),
        )
    assert slow.returncode == 0
    assert json.loads((tmp_path / "slow.json").read_text())["errors"] == {"timeout": 3}


class _silent_server:
    """Accepts connections on 127.0.0.1 and never answers: every request times out."""

    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        port: int = self.sock.getsockname()[1]
        return port

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                connection, _ = self.sock.accept()
                self.held.append(connection)
            except TimeoutError:
                continue

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        for connection in self.held:
            connection.close()
        self.sock.close()


def test_smoke_without_endpoint_port_forwards_and_checks_the_cluster(
    server: RunningServer, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    install_fake_kubectl(bin_dir)
    with fake_cluster(tmp_path) as (api, kubeconfig):
        api.nodes = [node("gpu-1", 1)]
        api.pods = [pod("bert-0", "Running", True)]
        env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "FAKE_KUBECTL_TARGET_PORT": server.url.rsplit(":", 1)[1],
            "FAKE_KUBECTL_LOG": str(tmp_path / "kubectl-args.json"),
        }
        out = tmp_path / "smoke.json"
        done = loadkit("smoke", "--kubeconfig", str(kubeconfig), "--output", str(out), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    args = json.loads((tmp_path / "kubectl-args.json").read_text())
    assert args[:3] == ["port-forward", "svc/bert-inference", ":8000"]
    assert args[args.index("-n") + 1] == "bert-inference"
    checks = {c["name"]: c for c in json.loads(out.read_text())["checks"]}
    assert checks["one inference"]["passed"]
    assert checks["gpu capacity on nodes"]["details"]["total"] == 1
    assert checks["pods in bert-inference"]["passed"]


def test_smoke_says_why_it_cannot_port_forward(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    install_fake_kubectl(bin_dir)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKE_KUBECTL_FAIL": "1",
        "FAKE_KUBECTL_LOG": str(tmp_path / "args.json"),
    }
    failing = loadkit("smoke", env=env)
    assert failing.returncode == 1
    assert 'services "bert-inference" not found' in failing.stderr
    missing = loadkit("smoke", env={"PATH": str(tmp_path / "empty")})
    assert missing.returncode == 1
    assert "kubectl not found on PATH" in missing.stderr


def test_the_locustfile_runs_under_plain_locust(server: RunningServer, tmp_path: Path) -> None:
    spec = importlib.util.find_spec(
        "loadkit.locustfile"
    )  # found, not imported: no gevent patching here
    assert spec is not None and spec.origin is not None
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(sys.path),
        "LOADKIT_ROUTE": "embed",
        "LOADKIT_MIX": "single=1",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            spec.origin,
            "--host",
            server.url,
            "--headless",
            "-u",
            "2",
            "-r",
            "2",
            "--run-time",
            "3s",
            "--json",
            "--only-summary",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    stats = json.loads(done.stdout)
    embed = next(s for s in stats if s["name"] == "embed:single")
    assert embed["num_requests"] > 0 and embed["num_failures"] == 0
