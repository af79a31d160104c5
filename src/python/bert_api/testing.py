"""Run the real service as a child process on 127.0.0.1, for tests (not shipped in the wheel)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_ready(
    url: str, timeout: float, check_alive: Callable[[], None] | None = None
) -> bool:
    """Poll `url`'s readiness route until it answers 200 (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check_alive is not None:
            check_alive()
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def wait_ready(self, timeout: float = 60.0) -> None:
        def check_alive() -> None:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}:\n{self.log.read_text()}"
                )

        if not wait_until_ready(self.url, timeout, check_alive):
            raise TimeoutError(f"server not ready after {timeout}s:\n{self.log.read_text()}")

    def terminate(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


@contextmanager
def run_server(env: dict[str, str], workdir: Path, wait: bool = True) -> Iterator[RunningServer]:
    """
    Start `python -m bert_api.serve` with `env` added; afterwards kill it if it still runs, and
    remove its temporary directory (a killed server cannot: its runtime directory and socket).
    """
    port = free_port()
    log = workdir / f"server-{port}.log"
    # Under /tmp whatever this process's TMPDIR: the engine's Unix socket lives under it, and
    # socket paths stop at 107 bytes.
    scratch_parent = "/tmp" if os.path.isdir("/tmp") else None
    with tempfile.TemporaryDirectory(
        prefix="bs-test-", dir=scratch_parent, ignore_cleanup_errors=True
    ) as scratch:
        environment = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join(sys.path),
            "HOME": str(workdir),
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "MODEL_CACHE_DIR": str(workdir / "cache"),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "TMPDIR": scratch,
            **env,
        }
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "bert_api.serve"],
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        server = RunningServer(f"http://127.0.0.1:{port}", process, log)
        try:
            if wait:
                server.wait_ready()
            yield server
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
