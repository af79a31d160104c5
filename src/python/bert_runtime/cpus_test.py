"""The CPU budget read from /proc and cgroup files laid out as the kernel lays them out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bert_runtime.config import EngineConfig
from bert_runtime.cpus import CpuBudget, cpu_budget
from bert_runtime.serving.session import session_options

V2_MOUNT = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,relatime shared:4 - cgroup2 cgroup2 rw"
ROOT_MOUNT = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw"


def _tree(tmp_path: Path, cgroup: str, mounts: list[str], files: dict[str, str]) -> Path:
    proc = tmp_path / "proc" / "self"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text(cgroup)
    (proc / "mountinfo").write_text("\n".join([ROOT_MOUNT, *mounts]) + "\n")
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return proc


def test_a_v2_limit_in_the_container_namespace(tmp_path: Path) -> None:
    proc = _tree(tmp_path, "0::/\n", [V2_MOUNT], {"sys/fs/cgroup/cpu.max": "250000 100000\n"})
    assert cpu_budget(proc, tmp_path).limit == 2.5


def test_a_parent_cgroup_limit_binds_an_unlimited_child(tmp_path: Path) -> None:
    # A Kubernetes pod: the pod's cgroup has the limit, the container's says max.
    files = {
        "sys/fs/cgroup/cpu.max": "max 100000\n",
        "sys/fs/cgroup/kubepods/pod1/cpu.max": "200000 100000\n",
        "sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "max 100000\n",
    }
    proc = _tree(tmp_path, "0::/kubepods/pod1/ctr\n", [V2_MOUNT], files)
    assert cpu_budget(proc, tmp_path).limit == 2.0


def test_no_limit_anywhere_is_none(tmp_path: Path) -> None:
    files = {"sys/fs/cgroup/cpu.max": "max 100000\n", "sys/fs/cgroup/app/cpu.max": "max 100000"}
    proc = _tree(tmp_path, "0::/app\n", [V2_MOUNT], files)
    assert cpu_budget(proc, tmp_path).limit is None


def test_a_v1_limit_seen_from_the_host_side_of_the_path(tmp_path: Path) -> None:
    # Docker on cgroup v1 without a cgroup namespace: /proc/self/cgroup names the host's path and
    # the mount shows the container's cgroup as its root.
    mount = (
        "31 23 0:27 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:5 - cgroup cgroup "
        "rw,cpu,cpuacct"
    )
    cgroup = "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n"
    files = {
        "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "150000\n",
        "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
    }
    assert cpu_budget(_tree(tmp_path, cgroup, [mount], files), tmp_path).limit == 1.5


def test_a_hybrid_host_reads_the_v1_cpu_controller(tmp_path: Path) -> None:
    # systemd's hybrid layout: a cgroup2 mount without the cpu controller beside v1's.
    mounts = [
        "32 23 0:28 / /sys/fs/cgroup/unified rw shared:6 - cgroup2 cgroup2 rw",
        "33 23 0:29 / /sys/fs/cgroup/cpu rw shared:7 - cgroup cgroup rw,cpu",
    ]
    files = {
        "sys/fs/cgroup/cpu/job/cpu.cfs_quota_us": "50000\n",
        "sys/fs/cgroup/cpu/job/cpu.cfs_period_us": "100000\n",
        "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
        "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
    }
    proc = _tree(tmp_path, "1:cpu:/job\n0::/\n", mounts, files)
    assert cpu_budget(proc, tmp_path).limit == 0.5


def test_unreadable_cgroups_leave_no_limit(tmp_path: Path) -> None:
    budget = cpu_budget(tmp_path / "no-proc", tmp_path)
    assert budget.limit is None
    assert budget.affinity == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("affinity", "limit", "usable"),
    [(16, 4.0, 4), (16, 0.5, 1), (16, 2.5, 3), (2, 8.0, 2), (2, None, 2)],
)
def test_usable_cpus_are_the_affinity_within_the_limit_rounded_up(
    affinity: int, limit: float | None, usable: int
) -> None:
    assert CpuBudget(affinity, limit).usable == usable


def test_a_restricted_budget_sizes_onnx_runtime_threads() -> None:
    hosts = os.cpu_count() or 1
    assert not CpuBudget(hosts, None).restricted
    assert CpuBudget(hosts, 0.5).restricted == (hosts > 1)
    # On this machine: restricted or not, the session's count is the budget or ONNX Runtime's.
    budget = cpu_budget()
    threads = session_options(EngineConfig()).intra_op_num_threads
    assert threads == (budget.usable if budget.restricted else 0)
    assert session_options(EngineConfig(intra_op_threads=3)).intra_op_num_threads == 3
