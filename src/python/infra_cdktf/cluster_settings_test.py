from __future__ import annotations

import pytest

from infra_cdktf.cluster_settings import (
    SUPPORTED_KUBERNETES_VERSIONS,
    ClusterSettings,
    ClusterSettingsError,
)


def test_defaults_mirror_the_seed_with_a_deployable_gpu_plan() -> None:
    settings = ClusterSettings()
    assert settings.cluster_label == "bert-inference-cluster"
    assert settings.region == "us-ord"
    assert settings.gpu_node_count == 1
    assert settings.gpu_node_type == "g2-gpu-rtx4000a1-s"


def test_retired_rtx6000_plan_is_refused_with_the_replacement_named() -> None:
    with pytest.raises(ClusterSettingsError, match="g2-gpu-rtx4000a1-s"):
        ClusterSettings(gpu_node_type="g1-gpu-rtx6000-1")


@pytest.mark.parametrize("label", ["", "-lead", "trail-", "has space", "x" * 33, "under_score"])
def test_invalid_labels_are_refused(label: str) -> None:
    with pytest.raises(ClusterSettingsError, match="cluster_label"):
        ClusterSettings(cluster_label=label)


@pytest.mark.parametrize("label", ["a", "bert-1", "x" * 32])
def test_valid_labels_are_accepted(label: str) -> None:
    assert ClusterSettings(cluster_label=label).cluster_label == label


def test_non_gpu_plan_is_refused() -> None:
    with pytest.raises(ClusterSettingsError, match="not a GPU plan"):
        ClusterSettings(gpu_node_type="s6-dedicated-8")


def test_autoscaler_bound_must_cover_the_node_count() -> None:
    with pytest.raises(ClusterSettingsError, match="gpu_autoscaler_max"):
        ClusterSettings(gpu_node_count=3, gpu_autoscaler_max=2)
    with pytest.raises(ClusterSettingsError, match="gpu_node_count"):
        ClusterSettings(gpu_node_count=0)


@pytest.mark.parametrize("version", ["1.33", "1.34", "1.99", "latest"])
def test_a_kubernetes_version_past_upstream_support_is_refused(version: str) -> None:
    with pytest.raises(ClusterSettingsError, match="k8s_version"):
        ClusterSettings(kubernetes_version=version)


def test_the_default_kubernetes_version_is_supported_until_its_listed_date() -> None:
    settings = ClusterSettings()
    assert SUPPORTED_KUBERNETES_VERSIONS[settings.kubernetes_version] >= "2027-01-01"


def test_the_platform_pool_is_a_cpu_pool() -> None:
    with pytest.raises(ClusterSettingsError, match="platform_node_type"):
        ClusterSettings(platform_node_type="g2-gpu-rtx4000a1-s")
    with pytest.raises(ClusterSettingsError, match="platform_node_count"):
        ClusterSettings(platform_node_count=0)
