"""ONNX Runtime sessions: providers from configuration, and no silent fallback from CUDA to CPU."""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bert_runtime.config import Device, EngineConfig
from bert_runtime.cpus import default_intra_op_threads
from bert_runtime.errors import ProviderUnavailableError

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
# ONNX Runtime's graph transformers a device's sessions leave out. On CPU, SkipLayerNormFusion
# would turn Add + LayerNormalization back into SkipLayerNormalization, whose CPU kernel is
# 2.6-3.8x slower than the two (onnxruntime 1.31.1; optimize.py, bench/layer_norm_bench.py).
_DISABLED_ON: dict[Device, list[str]] = {Device.CPU: ["SkipLayerNormFusion"], Device.CUDA: []}

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceInfo:
    """What a session runs on, for health and metadata endpoints."""

    provider: str
    device: Device
    name: str | None = None
    memory_total_bytes: int | None = None
    memory_used_bytes: int | None = None


def session_options(config: EngineConfig) -> ort.SessionOptions:
    """The options every session of ours uses; benchmarks add their own (profiling) on top."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not config.spin_wait:
        # ONNX Runtime's CPU threads busy-wait between runs by default (onnxruntime 1.31:
        # session.intra_op.allow_spinning = "1"); in a server they would burn the cores the
        # request handling needs whenever batches are small and frequent.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    # Unset: ONNX Runtime's own count, unless a CPU limit or affinity leaves fewer CPUs (cpus.py).
    threads = config.intra_op_threads or default_intra_op_threads()
    if threads is not None:
        options.intra_op_num_threads = threads
    return options


def create_session(
    model_path: Path, config: EngineConfig, options: ort.SessionOptions | None = None
) -> ort.InferenceSession:
    """
    A session on the configured device; strict mode raises if CUDA was asked for but is not used.
    `options` defaults to `session_options(config)`.
    """
    options = options or session_options(config)
    providers: list[str | tuple[str, dict[str, str]]] = [CPU_PROVIDER]
    if config.device is Device.CUDA:
        available = ort.get_available_providers()
        if CUDA_PROVIDER not in available:
            message = (
                "CUDA requested but this ONNX Runtime build has no CUDA provider "
                f"(available: {available}); "
                "install onnxruntime-gpu"
            )
            if config.strict_device:
                raise ProviderUnavailableError(message)
            logger.warning("%s; running on CPU", message)
        else:
            preload_cuda_libraries()
            cuda_options = config.cuda.provider_options(config.device_id)
            providers = [(CUDA_PROVIDER, cuda_options), CPU_PROVIDER]
    session = ort.InferenceSession(
        str(model_path),
        sess_options=options,
        providers=providers,
        disabled_optimizers=_DISABLED_ON[config.device],
    )
    active = session.get_providers()
    if config.device is Device.CUDA and CUDA_PROVIDER not in active:
        # onnxruntime-gpu logs an error and quietly runs on CPU when CUDA/cuDNN libraries are
        # missing.
        message = (
            f"CUDA requested but the session runs on {active}: check the NVIDIA driver and the "
            "CUDA 13 / cuDNN 9 libraries (onnxruntime-gpu[cuda,cudnn] installs them); ONNX "
            "Runtime's log above names the library it could not load"
        )
        if config.strict_device:
            raise ProviderUnavailableError(message)
        logger.warning(message)
    return session


@functools.cache
def preload_cuda_libraries() -> None:
    """
    Load CUDA and cuDNN from the nvidia-* wheels before the CUDA provider needs them.

    onnxruntime-gpu's CUDA provider library has no search path to those wheels (the `cuda` and
    `cudnn` extras), so without this it fails to find libcublasLt and the session quietly runs on
    CPU. ONNX Runtime's own `preload_dlls` knows the wheels' layout; it prints what it cannot load,
    which goes to our log instead. Once per process; the driver's libcuda comes from the host.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:  # ONNX Runtime before 1.21
        return
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            preload()
    except (OSError, RuntimeError) as error:
        logger.warning("could not preload the CUDA libraries: %s", error)
    for line in printed.getvalue().splitlines():
        logger.warning("CUDA library preload: %s", line)


def run_bound(
    session: ort.InferenceSession,
    feeds: dict[str, np.ndarray],
    outputs: list[str],
    device: str,
    device_id: int = 0,
    run_options: ort.RunOptions | None = None,
) -> list[np.ndarray]:
    """
    Run through IO binding: inputs copied to `device` ("cuda" or "cpu") once, only `outputs` back.

    The Engine uses it on CUDA; it is device-agnostic so the CPU test suite exercises the same code.
    `run_options` carries, for instance, the CUDA graph id (cuda_graphs.run_options).
    """
    binding = session.io_binding()
    for name, value in feeds.items():
        binding.bind_cpu_input(name, value)
    for name in outputs:
        binding.bind_output(name, device, device_id)
    session.run_with_iobinding(binding, run_options)
    return list(binding.copy_outputs_to_cpu())


def device_info(session: ort.InferenceSession, device_id: int = 0) -> DeviceInfo:
    provider = session.get_providers()[0]
    if provider != CUDA_PROVIDER:
        return DeviceInfo(provider=provider, device=Device.CPU, name=_cpu_name())
    name, total, used = _gpu_info(device_id)
    return DeviceInfo(provider, Device.CUDA, name, total, used)


def _cpu_name() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _gpu_info(device_id: int) -> tuple[str | None, int | None, int | None]:
    """
    GPU name and memory from nvidia-smi, which the NVIDIA container runtime mounts with the driver.
    """
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None, None, None
    query = [
        binary,
        f"--id={device_id}",
        "--query-gpu=name,memory.total,memory.used",
        "--format=csv,noheader,nounits",
    ]
    try:
        line = subprocess.run(
            query, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        name, total_mib, used_mib = (part.strip() for part in line.split(","))
        return name, int(total_mib) * 2**20, int(used_mib) * 2**20
    except (subprocess.SubprocessError, ValueError, OSError):
        return None, None, None
