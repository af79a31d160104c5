"""Test helpers: a local fake of the Kubernetes API calls loadkit makes, and a fake `kubectl`.

Fakes, clearly: no Kubernetes API server or cluster can run on our machines. The API fake answers
with the API's JSON shapes, so the real `kubernetes` client is exercised; the kubectl fake really
forwards TCP.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def node(name: str, gpus: int | None) -> dict[str, Any]:
    capacity = {"cpu": "8", "memory": "32Gi"}
    if gpus is not None:
        capacity["nvidia.com/gpu"] = str(gpus)
    return {"metadata": {"name": name}, "status": {"capacity": capacity}}


def pod(name: str, phase: str, ready: bool, waiting: str | None = None) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    container = {
        "name": "api",
        "ready": ready,
        "restartCount": 2 if waiting else 0,
        "image": "x",
        "imageID": "",
        "state": state,
    }
    return {
        "metadata": {"name": name, "namespace": "bert-inference"},
        "status": {"phase": phase, "containerStatuses": [container]},
    }


class FakeKubeApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> None:
        self.nodes, self.pods = nodes, pods
        self.paths: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(handler) -> None:  # - the fake's state lives on the server
                path = handler.path.split("?")[0]
                self.paths.append(path)
                if path == "/api/v1/nodes":
                    body = {
                        "kind": "NodeList",
                        "apiVersion": "v1",
                        "metadata": {},
                        "items": self.nodes,
                    }
                elif path == "/api/v1/namespaces/bert-inference/pods":
                    body = {
                        "kind": "PodList",
                        "apiVersion": "v1",
                        "metadata": {},
                        "items": self.pods,
                    }
                else:
                    handler.send_response(404)
                    handler.end_headers()
                    return
                data = json.dumps(body).encode()
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(data)))
                handler.end_headers()
                handler.wfile.write(data)

        super().__init__(("127.0.0.1", 0), Handler)


@contextmanager
def fake_cluster(tmp_path: Path) -> Iterator[tuple[FakeKubeApi, Path]]:
    """A running FakeKubeApi and a kubeconfig file pointing at it."""
    api = FakeKubeApi([], [])
    thread = threading.Thread(target=api.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        f"clusters: [{{name: fake, cluster: {{server: 'http://127.0.0.1:{api.server_address[1]}'}}}}]\n"
        "users: [{name: fake, user: {token: not-a-secret}}]\n"
        "contexts: [{name: fake, context: {cluster: fake, user: fake}}]\n"
    )
    try:
        yield api, kubeconfig
    finally:
        api.shutdown()
        api.server_close()


FAKE_KUBECTL = """#!{python}
# Fake kubectl for tests: records its arguments, then forwards a local port to
# FAKE_KUBECTL_TARGET_PORT.
import json, os, socket, sys, threading
with open(os.environ["FAKE_KUBECTL_LOG"], "w") as log:
    json.dump(sys.argv[1:], log)
if os.environ.get("FAKE_KUBECTL_FAIL"):
    print('error: services "bert-inference" not found', file=sys.stderr)
    sys.exit(1)
target = int(os.environ["FAKE_KUBECTL_TARGET_PORT"])
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
print("Forwarding from 127.0.0.1:%d -> 8000" % listener.getsockname()[1], flush=True)

def pipe(source, sink):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

def handle(client):
    upstream = socket.create_connection(("127.0.0.1", target))
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    pipe(upstream, client)

while True:
    connection, _ = listener.accept()
    threading.Thread(target=handle, args=(connection,), daemon=True).start()
"""


def install_fake_kubectl(bin_dir: Path) -> Path:
    """Write the fake `kubectl` into `bin_dir` (put it first on PATH)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "kubectl"
    script.write_text(FAKE_KUBECTL.replace("{python}", sys.executable))
    script.chmod(0o755)
    return script
