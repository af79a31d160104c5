"""Cluster checks against a local fake of the two Kubernetes API calls smoke uses (list nodes, list
pods).

A fake, clearly: no Kubernetes API server can run on our machines. It answers with the API's JSON
shapes, and the real `kubernetes` client talks to it through a kubeconfig, so everything but the
server is real.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from loadkit.kube import kube_checks


def _node(name: str, gpus: int | None) -> dict[str, Any]:
    capacity = {"cpu": "8", "memory": "32Gi"}
    if gpus is not None:
        capacity["nvidia.com/gpu"] = str(gpus)
    return {"metadata": {"name": name}, "status": {"capacity": capacity}}


def _pod(name: str, phase: str, ready: bool, waiting: str | None = None) -> dict[str, Any]:
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


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[tuple[FakeKubeApi, Path]]:
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
    yield api, kubeconfig
    api.shutdown()
    api.server_close()


def test_gpu_nodes_and_ready_pods_pass(cluster: tuple[FakeKubeApi, Path]) -> None:
    api, kubeconfig = cluster
    api.nodes = [_node("gpu-1", 1), _node("cpu-1", None)]
    api.pods = [_pod("bert-0", "Running", True)]
    gpu, pods = kube_checks(str(kubeconfig), "bert-inference")
    assert gpu.passed and gpu.details == {"total": 1, "by_node": {"gpu-1": 1, "cpu-1": 0}}
    assert pods.passed and pods.details["bert-0"]["ready"] is True
    assert api.paths == ["/api/v1/nodes", "/api/v1/namespaces/bert-inference/pods"]


def test_missing_gpus_and_crashing_pods_fail_with_reasons(
    cluster: tuple[FakeKubeApi, Path]
) -> None:
    api, kubeconfig = cluster
    api.nodes = [_node("cpu-1", None)]
    api.pods = [_pod("bert-0", "Running", False, waiting="CrashLoopBackOff")]
    gpu, pods = kube_checks(str(kubeconfig), "bert-inference")
    assert not gpu.passed and "device plugin" in gpu.reasons[0]
    assert not pods.passed and "CrashLoopBackOff" in pods.reasons[0]
    assert pods.details["bert-0"]["restarts"] == 2


def test_unreachable_api_server_is_a_failed_check_not_a_crash(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        "clusters: [{name: gone, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: gone, user: {}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: gone}}]\n"
    )
    (result,) = kube_checks(str(kubeconfig), "bert-inference")
    assert not result.passed and "did not answer" in result.reasons[0]
