"""
Run inside the GPU check Job (gpu_check.py) with the API image's Python: is a GPU visible, and is
the node's NVIDIA driver new enough for the image's CUDA 13 runtime (R580 or newer)?

Standard library only (it runs as `python -c` with this file's text), so it needs nothing from
the image but Python. It asks the driver itself through libcuda, which the NVIDIA container
toolkit mounts into GPU containers: cuDriverGetVersion gives the newest CUDA version the driver
supports (13000 = CUDA 13.0, first shipped with R580), cuDeviceGetCount the GPUs it sees.
"""

from __future__ import annotations

import ctypes
import sys

# CUDA 13.0 as cuDriverGetVersion reports it (1000 * major + 10 * minor).
REQUIRED_CUDA_DRIVER_API = 13000
REQUIRED_DRIVER_BRANCH = "R580"


def _cuda_version_text(version: int) -> str:
    return f"{version // 1000}.{version % 1000 // 10}"


def check(library: str = "libcuda.so.1") -> tuple[bool, str]:
    """(passed, one line that says why): the line ends up in the Job's termination message."""
    try:
        cuda = ctypes.CDLL(library)
    except OSError as error:
        return False, (
            f"gpu-check: cannot load {library} ({error}): no NVIDIA driver was mounted into the "
            "container; is the device plugin running and does the node have the NVIDIA "
            "container toolkit?"
        )
    version = ctypes.c_int(0)
    if cuda.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return False, "gpu-check: cuDriverGetVersion failed"
    found = _cuda_version_text(version.value)
    if version.value < REQUIRED_CUDA_DRIVER_API:
        return False, (
            f"gpu-check: the node's driver supports CUDA {found}; the image's CUDA 13 runtime "
            f"needs CUDA {_cuda_version_text(REQUIRED_CUDA_DRIVER_API)} "
            f"({REQUIRED_DRIVER_BRANCH} or newer drivers)"
        )
    if cuda.cuInit(0) != 0:
        return False, f"gpu-check: cuInit failed (driver supports CUDA {found})"
    count = ctypes.c_int(0)
    if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
        return False, f"gpu-check: the driver (CUDA {found}) sees no GPU in this container"
    return True, f"gpu-check: ok: {count.value} GPU(s), driver supports CUDA {found}"


def main() -> int:
    passed, line = check()
    print(line, flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
