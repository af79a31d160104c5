"""
The GPU check's probe, run as the Job runs it (`python -c <probe source>`), against a stand-in
libcuda.so.1 compiled here: the NVIDIA driver is the boundary this machine cannot cross, so a
small C library answers cuDriverGetVersion / cuInit / cuDeviceGetCount as a driver would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra_cdktf import gpu_check, gpu_probe, inference_manifests
from infra_cdktf.synth_testing import settings_for_tests

GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc builds the stand-in driver library")

FAKE_DRIVER = """
int cuDriverGetVersion(int *version) { *version = %(version)d; return 0; }
int cuInit(unsigned int flags) { return 0; }
int cuDeviceGetCount(int *count) { *count = %(devices)d; return 0; }
"""


def _driver(tmp_path: Path, version: int, devices: int) -> Path:
    """A folder holding libcuda.so.1 that reports `version` and `devices`."""
    assert GCC is not None
    folder = tmp_path / f"driver-{version}-{devices}"
    folder.mkdir()
    source = folder / "cuda.c"
    source.write_text(FAKE_DRIVER % {"version": version, "devices": devices})
    subprocess.run(
        [GCC, "-shared", "-fPIC", "-o", str(folder / "libcuda.so.1"), str(source)], check=True
    )
    return folder


def _run_probe(library_dir: Path | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    if library_dir is not None:
        env["LD_LIBRARY_PATH"] = str(library_dir)
    return subprocess.run(
        [sys.executable, "-c", gpu_check.probe_source()],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@needs_gcc
def test_a_cuda_13_driver_with_a_gpu_passes(tmp_path: Path) -> None:
    done = _run_probe(_driver(tmp_path, 13000, 1))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "gpu-check: ok: 1 GPU(s), driver supports CUDA 13.0"


@needs_gcc
def test_a_driver_older_than_r580_fails_and_says_what_is_needed(tmp_path: Path) -> None:
    done = _run_probe(_driver(tmp_path, 12080, 1))
    assert done.returncode == 1
    assert "supports CUDA 12.8" in done.stdout and "R580 or newer" in done.stdout


@needs_gcc
def test_a_driver_that_sees_no_gpu_fails(tmp_path: Path) -> None:
    done = _run_probe(_driver(tmp_path, 13010, 0))
    assert done.returncode == 1
    assert "sees no GPU" in done.stdout


def test_no_mounted_driver_fails_with_the_likely_cause(tmp_path: Path) -> None:
    passed, line = gpu_probe.check(str(tmp_path / "libcuda.so.1"))
    assert not passed
    assert "no NVIDIA driver was mounted" in line


def test_the_job_runs_the_probe_on_one_gpu_with_the_api_images_python() -> None:
    settings = settings_for_tests()
    job = gpu_check.gpu_check_job(settings)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == settings.image
    assert container["command"] == [gpu_check.PYTHON, "-c", gpu_check.probe_source()]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert job["spec"]["activeDeadlineSeconds"] == gpu_check.DEADLINE_SECONDS
    # Its pod is not one of the service's: selectors by the service's name label skip it.
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert not inference_manifests.SELECTOR.items() <= pod_labels.items()
    # A new image is a new Job (a Job's pod template cannot change).
    other = gpu_check.gpu_check_job(settings_for_tests(image="registry.example.com/api:2"))
    assert other["metadata"]["name"] != job["metadata"]["name"]


def test_the_checks_pod_may_not_talk_to_anyone() -> None:
    job = gpu_check.gpu_check_job(settings_for_tests())
    policy = gpu_check.gpu_check_network_policy()
    selected = policy["spec"]["podSelector"]["matchLabels"]
    assert selected.items() <= job["spec"]["template"]["metadata"]["labels"].items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy["spec"] and "egress" not in policy["spec"]
