"""How many CPUs this process may really use: its affinity mask and its cgroups' CPU limits.

`os.cpu_count()` counts the host's CPUs, and ONNX Runtime's default thread pool has one thread per
physical core of the host (onnxruntime 1.31: `GetNumPhysicalCpuCores()`; the cgroup limit is
invisible to it, microsoft/onnxruntime#29510). In a container with a CPU limit (Kubernetes
`limits.cpu`, `docker --cpus`) on a larger node, both oversubscribe the limit: more threads want
to run than the kernel's CFS quota lets run, and it stalls the whole container for the rest of
each period (100 ms by default), which shows as tail latency. So thread pools and worker counts are
sized by the budget found here.

The limit is the tightest `cpu.max` (cgroup v2) or `cpu.cfs_quota_us / cpu.cfs_period_us` (v1)
from this process's cgroup up to the mount's root, since a parent's limit binds its children too.
Written here rather than taken from a library: the packages that do this (loky's `cpu_count`) are
process-pool libraries, and this is all of it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuBudget:
    """The CPUs this process may run on, and its cgroups' CPU limit (in CPUs) if any."""

    affinity: int
    limit: float | None

    @property
    def usable(self) -> int:
        """Threads that can run at once: the affinity mask, capped by the limit rounded up."""
        if self.limit is None:
            return self.affinity
        return max(1, min(self.affinity, math.ceil(self.limit - 1e-9)))

    @property
    def restricted(self) -> bool:
        """Whether the process may use fewer CPUs than the host has."""
        return self.usable < (os.cpu_count() or self.usable)

    def describe(self) -> str:
        limit = "none" if self.limit is None else f"{self.limit:g} CPUs"
        return f"{self.usable} usable (affinity {self.affinity}, cgroup CPU limit {limit})"


def cpu_budget(proc_self: Path = Path("/proc/self"), root: Path = Path("/")) -> CpuBudget:
    """This process's CPU budget; `proc_self` and `root` are for tests (a tree made to look so)."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 1
    try:
        limit = _cgroup_limit(proc_self, root)
    except (OSError, ValueError):  # no cgroups, or not readable here: no limit known
        limit = None
    return CpuBudget(affinity, limit)


def default_intra_op_threads() -> int | None:
    """
    ONNX Runtime's intra-op threads when none is set: left to ONNX Runtime (None) where the
    process may use the whole host, else the budget.
    """
    budget = cpu_budget()
    return budget.usable if budget.restricted else None


def _cgroup_limit(proc_self: Path, root: Path) -> float | None:
    """The tightest CPU limit on the cgroups holding this process, in CPUs; None for none."""
    limits: list[float] = []
    for mount, relative, version in _cpu_cgroups(proc_self, root):
        level = mount / relative
        while True:
            found = _limit_at(level, version)
            if found is not None:
                limits.append(found)
            if level == mount:
                break
            level = level.parent
    return min(limits, default=None)


def _limit_at(directory: Path, version: int) -> float | None:
    if version == 2:
        path = directory / "cpu.max"
        if not path.is_file():
            return None
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    quota_path, period_path = directory / "cpu.cfs_quota_us", directory / "cpu.cfs_period_us"
    if not (quota_path.is_file() and period_path.is_file()):
        return None
    quota_us = int(quota_path.read_text())
    return None if quota_us < 0 else quota_us / int(period_path.read_text())


def _cpu_cgroups(proc_self: Path, root: Path) -> list[tuple[Path, str, int]]:
    """(mount point, path under it, cgroup version) of this process's cgroups with a CPU limit."""
    paths: dict[int, str] = {}  # version -> this process's cgroup path
    for line in (proc_self / "cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and not controllers:
            paths[2] = path
        elif "cpu" in controllers.split(","):
            paths[1] = path
    found: list[tuple[Path, str, int]] = []
    for line in (proc_self / "mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        mount_root, mount_point = fields[3], fields[4]
        fstype, options = fields[separator + 1], fields[separator + 3].split(",")
        version = 2 if fstype == "cgroup2" else 1 if fstype == "cgroup" and "cpu" in options else 0
        if version not in paths:
            continue
        path = paths.pop(version)
        # Without a cgroup namespace the path is the host's; the mount shows it from mount_root.
        if path == mount_root or path.startswith(mount_root.rstrip("/") + "/"):
            path = path[len(mount_root.rstrip("/")) :]
        found.append((root / mount_point.lstrip("/"), path.strip("/"), version))
    return found
