"""Huge pages: environment composition, the one-time re-exec, and the effect on malloc (real
processes, real kernel)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bert_runtime.huge_pages import TUNABLE, huge_pages_status, kernel_mode, with_huge_pages

_STATUS = huge_pages_status()
KERNEL_MODE = _STATUS.kernel_mode
THP_USABLE = _STATUS.kernel_allows


def test_tunable_added_to_empty_environment() -> None:
    assert with_huge_pages({"PATH": "/bin"}) == {"PATH": "/bin", "GLIBC_TUNABLES": TUNABLE}


def test_other_tunables_are_kept() -> None:
    env = with_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert env["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{TUNABLE}"


def test_an_explicit_choice_is_kept() -> None:
    env = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}
    assert with_huge_pages(env) == env


@pytest.mark.parametrize(
    ("content", "mode"),
    [
        ("always [madvise] never\n", "madvise"),
        ("[always] madvise never\n", "always"),
        ("always madvise [never]\n", "never"),
        ("garbage\n", "unavailable"),
        (None, "unavailable"),  # no such file: not Linux, or a kernel without THP
    ],
)
def test_kernel_mode_is_the_bracketed_word(tmp_path: Path, content: str | None, mode: str) -> None:
    mode_file = tmp_path / "enabled"
    if content is not None:
        mode_file.write_text(content)
    assert kernel_mode(mode_file) == mode


def _python(code: str, env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.split()


REEXEC = """
import os
from bert_runtime.huge_pages import reexec_with_huge_pages
os.environ.setdefault("FIRST_PID", str(os.getpid()))
reexec_with_huge_pages()
print(os.environ["FIRST_PID"], os.getpid(), os.environ.get("GLIBC_TUNABLES", "-"))
"""


def test_reexec_sets_the_tunable_once_in_the_same_process() -> None:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    first_pid, pid, tunables = _python(REEXEC, env)
    assert first_pid == pid  # exec, not a child process, so supervisors see one PID
    assert tunables == (TUNABLE if THP_USABLE else "-")


def test_reexec_leaves_an_explicit_choice_alone() -> None:
    env = {**os.environ, "GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}
    assert _python(REEXEC, env)[2] == "glibc.malloc.hugetlb=0"


MALLOC_64_MIB = """
import ctypes
from bert_runtime.huge_pages import huge_pages_status
size = 64 << 20
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
block = libc.malloc(size)
ctypes.memset(block, 1, size)
print(huge_pages_status().anon_huge_bytes)
"""


@pytest.mark.skipif(not THP_USABLE, reason=f"transparent huge pages are {KERNEL_MODE} here")
def test_malloc_gets_huge_pages_with_the_tunable() -> None:
    env = with_huge_pages({k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"})
    (huge,) = _python(MALLOC_64_MIB, env)
    assert int(huge) >= 32 << 20
