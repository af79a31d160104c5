"""Transparent huge pages for ONNX Runtime's buffers, for fewer TLB misses in large matmuls.

ONNX Runtime allocates pre-packed weights and activations with glibc's malloc. Started with
`GLIBC_TUNABLES=glibc.malloc.hugetlb=1` (glibc >= 2.35), malloc asks the kernel to back its large
mappings with 2 MiB pages, which cuts TLB misses in the big matrix multiplications (on a
2-vCPU VM the throughput effect was within the host's noise: docs/BENCHMARKS.md). glibc reads
the tunable once, when the process starts, so a library cannot switch it on: programs opt in,
either in their environment (the container image does) or by re-executing themselves once with
`reexec_with_huge_pages` (the `serve` command does).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TUNABLE_NAME = "glibc.malloc.hugetlb"
TUNABLE = f"{TUNABLE_NAME}=1"
_THP_MODE_FILE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


@dataclass(frozen=True)
class HugePages:
    """How this process stands with transparent huge pages, for logs and benchmarks."""

    # The kernel's policy: "always", "madvise", "never", or "unavailable" (not Linux, no THP).
    kernel_mode: str
    # Whether glibc was started with the tunable (any value counts: the user chose).
    malloc_tunable_set: bool
    # Anonymous memory this process has in huge pages right now.
    anon_huge_bytes: int

    @property
    def kernel_allows(self) -> bool:
        """Whether an madvise'd mapping can get huge pages at all."""
        return self.kernel_mode in ("always", "madvise")


def with_huge_pages(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` whose GLIBC_TUNABLES asks for huge pages; an explicit choice is kept."""
    env = dict(environ)
    current = env.get("GLIBC_TUNABLES", "")
    if not _tunable_named(current):
        env["GLIBC_TUNABLES"] = f"{current}:{TUNABLE}" if current else TUNABLE
    return env


def reexec_with_huge_pages() -> None:
    """Replace this process with the same command line and the tunable set, once; else return.

    Returns without doing anything where it cannot help: not glibc, THP off in the kernel, the
    tunable already present (which also stops a second re-exec), or an embedded interpreter with no
    command line to repeat.
    """
    if _tunable_named(os.environ.get("GLIBC_TUNABLES", "")) or not _can_help():
        return
    if not sys.executable or len(sys.orig_argv) < 2:
        return
    argv = [sys.executable, *sys.orig_argv[1:]]
    os.execve(sys.executable, argv, with_huge_pages(os.environ))


def huge_pages_status() -> HugePages:
    return HugePages(
        kernel_mode=kernel_mode(),
        malloc_tunable_set=_tunable_named(os.environ.get("GLIBC_TUNABLES", "")),
        anon_huge_bytes=_anon_huge_bytes(),
    )


def _tunable_named(tunables: str) -> bool:
    return any(part.split("=", 1)[0] == TUNABLE_NAME for part in tunables.split(":"))


def _can_help() -> bool:
    return platform.libc_ver()[0] == "glibc" and huge_pages_status().kernel_allows


def kernel_mode(mode_file: Path = _THP_MODE_FILE) -> str:
    """The bracketed word of e.g. `always [madvise] never`."""
    try:
        text = mode_file.read_text()
    except OSError:
        return "unavailable"
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else "unavailable"


def _anon_huge_bytes() -> int:
    try:
        lines = Path("/proc/self/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith("AnonHugePages:"):
            return int(line.split()[1]) * 1024
    return 0
