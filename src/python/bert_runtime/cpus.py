"""How many CPUs this process may really use: its affinity mask and its cgroups' CPU limits.

`os.cpu_count()` counts the host's CPUs, and ONNX Runtime's default thread pool has one thread per
physical core of the host (onnxruntime 1.31: `GetNumPhysicalCpuCores()`; the cgroup limit is
invisible to it, microsoft/onnxruntime#29510). In a container with a CPU limit (Kubernetes
`limits.cpu`, `docker --cpus`) on a larger node, both oversubscribe the limit: more threads want
to run than the kernel's CFS quota lets run, and it stalls the whole container for the rest of
each period (100 ms by default), which shows as tail latency. So thread pools and worker counts are
sized by the budget found here.

The limit is the tightest `cpu.max` (cgroup v2) or `cpu.cfs_quota_us / cpu.cfs_period_us` (v1)
from this process's cgroup up to its mount's root, since a parent's limit binds its children too.
Written here rather than taken from a library: the packages that do this (loky's `cpu_count`) are
process-pool libraries, and this is all of it.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

# What a malformed or unexpected /proc or cgroup file raises here: then no limit is known.
_UNREADABLE = (OSError, ValueError, IndexError)
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class CpuBudget:
    """The CPUs this process may run on, the host's physical cores, and its CPU limit if any."""

    affinity: int
    limit: float | None
    # ONNX Runtime's default thread count: the host's physical cores.
    physical_cores: int

    @property
    def usable(self) -> int:
        """
        Threads that can run at once: the affinity mask, capped by the limit rounded up (a
        fractional CPU still runs a thread for part of each period).
        """
        if self.limit is None:
            return self.affinity
        return max(1, min(self.affinity, math.ceil(self.limit - 1e-9)))

    @property
    def restricted(self) -> bool:
        """Whether ONNX Runtime's default (one thread per physical core) would be too many."""
        return self.usable < self.physical_cores

    def describe(self) -> str:
        """One line for the start-up log: what was found, and the count used."""
        limit = "none" if self.limit is None else f"{self.limit:g} CPUs"
        return (
            f"{self.usable} usable (affinity {self.affinity}, cgroup CPU limit {limit}, "
            f"{self.physical_cores} physical cores on the host)"
        )


def cpu_budget(
    proc_self: Path = Path("/proc/self"),
    root: Path = Path("/"),
    cpus: Path = Path("/sys/devices/system/cpu"),
) -> CpuBudget:
    """This process's CPU budget; the paths are for tests (a tree made to look so)."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        affinity = os.cpu_count() or 1
    try:
        limits = [_limit_above(*found) for found in cpu_cgroups(proc_self, root)]
        limit = min((found for found in limits if found is not None), default=None)
    except _UNREADABLE:
        limit = None
    return CpuBudget(affinity, limit, _physical_cores(cpus))


def default_intra_op_threads() -> int | None:
    """
    ONNX Runtime's intra-op threads when none is configured: the budget where ONNX Runtime's own
    count would be more, else None (ONNX Runtime's own). ONNX Runtime's ORT_INTRA_OP_NUM_THREADS,
    when set, is left to ONNX Runtime.
    """
    if os.environ.get("ORT_INTRA_OP_NUM_THREADS"):
        return None
    budget = cpu_budget()
    return budget.usable if budget.restricted else None


def cpu_cgroups(proc_self: Path, root: Path) -> list[tuple[Path, Path, int]]:
    """
    (this process's cgroup directory, its mount point, cgroup version) for each hierarchy that
    can hold a CPU limit: v2, and v1's `cpu` controller.
    """
    paths: dict[int, str] = {}  # version -> this process's cgroup path
    for line in (proc_self / "cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and not controllers:
            paths[2] = path
        elif "cpu" in controllers.split(","):
            paths[1] = path
    best: dict[int, tuple[str, Path, str]] = {}  # version -> (mount root, mount point, path)
    for line in (proc_self / "mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        mount_root, mount_point = _unescape(fields[3]), _unescape(fields[4])
        fstype, options = fields[separator + 1], fields[separator + 3].split(",")
        version = 2 if fstype == "cgroup2" else 1 if fstype == "cgroup" and "cpu" in options else 0
        cgroup = paths.get(version)
        # The mount that shows this process's cgroup: its root holds the path (the longest
        # such root wins). Without a cgroup namespace the path is the host's.
        if cgroup is None or ".." in cgroup.split("/") or not _holds(mount_root, cgroup):
            continue
        if version not in best or len(mount_root) > len(best[version][0]):
            below = cgroup[len(mount_root.rstrip("/")) :].strip("/")
            best[version] = (mount_root, root / mount_point.lstrip("/"), below)
    return [(point / below, point, version) for version, (_, point, below) in best.items()]


def _limit_above(directory: Path, mount_point: Path, version: int) -> float | None:
    """The tightest limit from `directory` up to `mount_point`, in CPUs; None for none."""
    limits = []
    level = directory
    while True:
        found = _limit_at(level, version)
        if found is not None:
            limits.append(found)
        if level == mount_point or level == level.parent:
            return min(limits, default=None)
        level = level.parent


def _limit_at(directory: Path, version: int) -> float | None:
    """One cgroup's own limit, in CPUs; None when it has none (or no such file)."""
    if version == 2:
        path = directory / "cpu.max"
        if not path.is_file():
            return None
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" or int(period) <= 0 else int(quota) / int(period)
    quota_path, period_path = directory / "cpu.cfs_quota_us", directory / "cpu.cfs_period_us"
    if not (quota_path.is_file() and period_path.is_file()):
        return None
    quota_us, period_us = int(quota_path.read_text()), int(period_path.read_text())
    return None if quota_us < 0 or period_us <= 0 else quota_us / period_us


def _physical_cores(cpus: Path) -> int:
    """The host's physical cores (distinct package and core ids), else its logical CPUs."""
    cores = set()
    try:
        for topology in cpus.glob("cpu[0-9]*/topology"):
            package = (topology / "physical_package_id").read_text().strip()
            cores.add((package, (topology / "core_id").read_text().strip()))
    except OSError:
        cores = set()
    return len(cores) or os.cpu_count() or 1


def _holds(mount_root: str, path: str) -> bool:
    root = mount_root.rstrip("/")
    return path == mount_root or not root or path.startswith(root + "/")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040 ...)."""
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)
