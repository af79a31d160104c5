"""Reach a cluster service without an endpoint: `kubectl port-forward` to a free local port, as the
seed did.

kubectl, not the Python client's websocket port-forward: it already handles reconnects, auth plugins
and choosing a ready pod behind the service, and operators have it next to their kubeconfig.
"""

from __future__ import annotations

import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> \d+")


class PortForwardError(RuntimeError):
    """kubectl is missing, or it could not forward (the message carries its error)."""


@contextmanager
def port_forward(
    service: str,
    namespace: str,
    remote_port: int,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    kubectl: str = "kubectl",
    timeout_s: float = 30.0,
) -> Iterator[str]:
    """Yield `http://127.0.0.1:<port>` forwarded to `svc/<service>:<remote_port>`; stop on exit."""
    binary = shutil.which(kubectl)
    if binary is None:
        raise PortForwardError(f"{kubectl} not found on PATH: install kubectl or pass --endpoint")
    command = [binary, "port-forward", f"svc/{service}", f":{remote_port}", "-n", namespace]
    command += ["--address", "127.0.0.1"]
    if kubeconfig:
        command += ["--kubeconfig", kubeconfig]
    if context:
        command += ["--context", context]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def read_stdout() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read_stdout, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{_wait_for_port(process, lines, timeout_s)}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_port(
    process: subprocess.Popen[str], lines: queue.Queue[str | None], timeout_s: float
) -> int:
    while True:
        try:
            line = lines.get(timeout=timeout_s)
        except queue.Empty:
            raise PortForwardError(
                f"kubectl port-forward said nothing for {timeout_s:g}s"
            ) from None
        if line is None:
            process.wait()
            error = process.stderr.read().strip() if process.stderr else ""
            raise PortForwardError(f"kubectl port-forward exited ({process.returncode}): {error}")
        match = _FORWARDING.search(line)
        if match:
            return int(match.group(1))
