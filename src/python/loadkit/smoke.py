"""
`smoke`: health, model metadata, one inference, GPU detection; with a kubeconfig also the cluster.
"""

from __future__ import annotations

from loadkit.checks import SuiteReport
from loadkit.http_checks import Client, check_gpu, check_health, check_inference, fetch_metadata


def run_smoke(
    endpoint: str,
    *,
    model: str = "bert",
    expect_gpu: bool = False,
    kubeconfig: str | None = None,
    cluster_checks: bool | None = None,
    namespace: str = "bert-inference",
    context: str | None = None,
    timeout_s: float = 30.0,
    api_key: str | None = None,
) -> SuiteReport:
    client = Client(endpoint, timeout_s, api_key)
    metadata, info = fetch_metadata(client, model)
    checks = [
        check_health(client),
        metadata,
        check_inference(client, model, ["the quick brown fox"], "one inference"),
        check_gpu(info, expect_gpu),
    ]
    # Cluster checks when asked, or when a kubeconfig is given (None: the default kubeconfig).
    if cluster_checks or (cluster_checks is None and kubeconfig is not None):
        from loadkit.kube import kube_checks

        checks += kube_checks(kubeconfig, namespace, context)
    return SuiteReport("smoke", endpoint, checks)
