"""Cluster checks against the local fake of the Kubernetes API calls smoke uses (see fake_kube)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loadkit.fake_kube import FakeKubeApi, fake_cluster, node, pod
from loadkit.kube import kube_checks


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[tuple[FakeKubeApi, Path]]:
    with fake_cluster(tmp_path) as running:
        yield running


def test_gpu_nodes_and_ready_pods_pass(cluster: tuple[FakeKubeApi, Path]) -> None:
    api, kubeconfig = cluster
    api.nodes = [node("gpu-1", 1), node("cpu-1", None)]
    api.pods = [pod("bert-0", "Running", True)]
    gpu, pods = kube_checks(str(kubeconfig), "bert-inference")
    assert gpu.passed and gpu.details == {"total": 1, "by_node": {"gpu-1": 1, "cpu-1": 0}}
    assert pods.passed and pods.details["bert-0"]["ready"] is True
    assert api.paths == ["/api/v1/nodes", "/api/v1/namespaces/bert-inference/pods"]


def test_missing_gpus_and_crashing_pods_fail_with_reasons(
    cluster: tuple[FakeKubeApi, Path]
) -> None:
    api, kubeconfig = cluster
    api.nodes = [node("cpu-1", None)]
    api.pods = [pod("bert-0", "Running", False, waiting="CrashLoopBackOff")]
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
