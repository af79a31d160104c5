"""The CPU budget read from /proc, cgroup and sysfs files laid out as the kernel lays them out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bert_runtime import cpus
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


def _limit(tmp_path: Path, cgroup: str, mounts: list[str], files: dict[str, str]) -> float | None:
    return cpu_budget(_tree(tmp_path, cgroup, mounts, files), tmp_path).limit


def test_a_v2_limit_in_the_container_namespace(tmp_path: Path) -> None:
    files = {"sys/fs/cgroup/cpu.max": "250000 100000\n"}
    assert _limit(tmp_path, "0::/\n", [V2_MOUNT], files) == 2.5


def test_the_tightest_limit_from_the_cgroup_up_binds(tmp_path: Path) -> None:
    # A Kubernetes pod: the pod's cgroup has 2 CPUs, the container's 3, the root none.
    files = {
        "sys/fs/cgroup/cpu.max": "max 100000\n",
        "sys/fs/cgroup/kubepods/pod1/cpu.max": "200000 100000\n",
        "sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "300000 100000\n",
        "sys/fs/cgroup/kubepods/pod2/cpu.max": "50000 100000\n",  # a sibling's: not ours
    }
    assert _limit(tmp_path, "0::/kubepods/pod1/ctr\n", [V2_MOUNT], files) == 2.0
    files["sys/fs/cgroup/kubepods/pod1/ctr/cpu.max"] = "100000 100000\n"
    assert _limit(tmp_path / "again", "0::/kubepods/pod1/ctr\n", [V2_MOUNT], files) == 1.0


def test_no_limit_anywhere_is_none(tmp_path: Path) -> None:
    files = {"sys/fs/cgroup/cpu.max": "max 100000\n", "sys/fs/cgroup/app/cpu.max": "max 100000"}
    assert _limit(tmp_path, "0::/app\n", [V2_MOUNT], files) is None


def test_a_v1_limit_seen_from_the_host_side_of_the_path(tmp_path: Path) -> None:
    # Docker on cgroup v1 without a cgroup namespace: /proc/self/cgroup names the host's path and
    # the mount (two optional fields) shows the container's cgroup as its root.
    mount = (
        "31 23 0:27 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:5 master:2 - cgroup "
        "cgroup rw,cpu,cpuacct"
    )
    cgroup = "12:name=systemd:/docker/abc\n5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n"
    files = {
        "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "150000\n",
        "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        # Where the host's path would lead if it were not taken from the mount's root.
        "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "10000\n",
        "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
    }
    assert _limit(tmp_path, cgroup, [mount], files) == 1.5


def test_the_mount_that_holds_the_cgroup_is_read(tmp_path: Path) -> None:
    # A bind mount of another cgroup comes first; the process's cgroup is under the second.
    mounts = [
        "40 23 0:26 /other /mnt/other rw shared:9 - cgroup2 cgroup2 rw",
        V2_MOUNT,
    ]
    files = {"mnt/other/cpu.max": "10000 100000\n", "sys/fs/cgroup/app/cpu.max": "400000 100000\n"}
    assert _limit(tmp_path, "0::/app\n", mounts, files) == 4.0
    # A cgroup outside every mount (above the namespace's root) has no limit we can read.
    assert _limit(tmp_path / "above", "0::/../x\n", mounts, files) is None


def test_a_hybrid_host_reads_the_v1_cpu_controller(tmp_path: Path) -> None:
    # systemd's hybrid layout: a cgroup2 mount without the cpu controller beside v1's, whose
    # mount point is written with mountinfo's octal escape for a space.
    mounts = [
        "32 23 0:28 / /sys/fs/cgroup/unified rw shared:6 - cgroup2 cgroup2 rw",
        r"33 23 0:29 / /sys/fs/cgroup/cpu\040v1 rw - cgroup cgroup rw,cpu",
    ]
    files = {
        "sys/fs/cgroup/cpu v1/job/cpu.cfs_quota_us": "50000\n",
        "sys/fs/cgroup/cpu v1/job/cpu.cfs_period_us": "100000\n",
        "sys/fs/cgroup/cpu v1/cpu.cfs_quota_us": "-1\n",
        "sys/fs/cgroup/cpu v1/cpu.cfs_period_us": "100000\n",
    }
    assert _limit(tmp_path, "1:cpu:/job\n0::/\n", mounts, files) == 0.5


@pytest.mark.parametrize(
    ("mountinfo", "cpu_max"),
    [
        ("30 23 0:26 / /sys/fs/cgroup rw - cgroup2", "100000 100000"),  # a cut line
        (V2_MOUNT, "50000 0"),  # a zero period
        (V2_MOUNT, "lots 100000"),
    ],
)
def test_malformed_files_leave_no_limit(tmp_path: Path, mountinfo: str, cpu_max: str) -> None:
    assert _limit(tmp_path, "0::/\n", [mountinfo], {"sys/fs/cgroup/cpu.max": cpu_max}) is None


def test_no_proc_leaves_no_limit_and_the_real_affinity(tmp_path: Path) -> None:
    budget = cpu_budget(tmp_path / "no-proc", tmp_path, tmp_path / "no-sys")
    assert budget.limit is None
    assert budget.affinity == len(os.sched_getaffinity(0))
    assert budget.physical_cores == os.cpu_count()  # no topology to read: the logical count


def test_physical_cores_count_distinct_cores_not_their_threads(tmp_path: Path) -> None:
    # Two packages of two cores with two threads each: 8 CPUs, 4 cores.
    for cpu in range(8):
        topology = tmp_path / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(f"{cpu // 4}\n")
        (topology / "core_id").write_text(f"{cpu % 2}\n")
    (tmp_path / "cpufreq").mkdir()  # not a CPU
    assert cpu_budget(tmp_path / "no-proc", tmp_path, tmp_path).physical_cores == 4


@pytest.mark.parametrize(
    ("affinity", "limit", "usable"),
    [(16, 4.0, 4), (16, 0.5, 1), (16, 2.5, 3), (16, 2.0000000001, 2), (2, 8.0, 2), (2, None, 2)],
)
def test_usable_cpus_are_the_affinity_within_the_limit_rounded_up(
    affinity: int, limit: float | None, usable: int
) -> None:
    assert CpuBudget(affinity, limit, 16).usable == usable


def test_onnx_runtime_threads_follow_a_restricted_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORT_INTRA_OP_NUM_THREADS", raising=False)
    # A pod limited to 4 CPUs on a node of 32 cores (64 CPUs): 4 threads, not 32.
    monkeypatch.setattr(cpus, "cpu_budget", lambda: CpuBudget(64, 4.0, 32))
    assert session_options(EngineConfig()).intra_op_num_threads == 4
    assert session_options(EngineConfig(intra_op_threads=3)).intra_op_num_threads == 3
    # ONNX Runtime's own variable wins over the budget.
    monkeypatch.setenv("ORT_INTRA_OP_NUM_THREADS", "2")
    assert session_options(EngineConfig()).intra_op_num_threads == 0
    monkeypatch.delenv("ORT_INTRA_OP_NUM_THREADS")
    # A limit above the physical cores leaves ONNX Runtime's own count (0: its default).
    monkeypatch.setattr(cpus, "cpu_budget", lambda: CpuBudget(64, 48.0, 32))
    assert session_options(EngineConfig()).intra_op_num_threads == 0
