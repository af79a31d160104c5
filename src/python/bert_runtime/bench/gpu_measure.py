"""gpu_bench's instruments: time-boxed timing, GPU memory sampling, the PyTorch baseline, the
attention-kernel probe and the HTTP server driver. Each degrades to a stated "not measured"
where its tool is missing (no GPU, no torch, no bert_api), so the CPU dry run covers the code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Seconds per call: median and 90th percentile over `runs` timed calls."""

    median: float
    p90: float
    runs: int

    def rate(self, items: int) -> float:
        return items / self.median


def timed(
    run: Callable[[], object], min_seconds: float, *, warmup: int = 2, max_runs: int = 2000
) -> Timing:
    """Call `run` after `warmup` untimed calls until `min_seconds` passed (5 calls at least)."""
    for _ in range(warmup):
        run()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < max_runs and (len(times) < 5 or time.perf_counter() - started < min_seconds):
        begin = time.perf_counter()
        run()
        times.append(time.perf_counter() - begin)
    ordered = sorted(times)
    return Timing(statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))], len(times))


class GpuMemory:
    """
    The GPU's used memory, sampled from nvidia-smi every 0.2 s in a thread (device-wide: a
    container's PIDs are not the driver's; the benchmark owns the GPU). `peak_mib()` is the
    highest since `reset()`, less what was used when sampling started (None without nvidia-smi).
    """

    def __init__(self, device_id: int = 0, sample: bool = True) -> None:
        self._binary = shutil.which("nvidia-smi") if sample else None
        self._device_id = device_id
        self._peak = 0
        self._stop = threading.Event()
        self.baseline = self._used() if self._binary else None
        self._thread: threading.Thread | None = None
        if self._binary and self.baseline is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _used(self) -> int | None:
        assert self._binary is not None
        query = [self._binary, f"--id={self._device_id}", "--query-gpu=memory.used"]
        try:
            done = subprocess.run(
                [*query, "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5
            )
            return int(done.stdout.strip().splitlines()[0])
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            return None

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            used = self._used()
            if used is not None:
                self._peak = max(self._peak, used)

    def reset(self) -> None:
        self._peak = self._used() or 0 if self._binary else 0

    def peak_mib(self) -> int | None:
        if self.baseline is None:
            return None
        latest = self._used() or 0
        return max(self._peak, latest) - self.baseline

    def close(self) -> None:
        self._stop.set()


@contextmanager
def peak_memory(memory: GpuMemory, into: dict[str, int | None], name: str) -> Iterator[None]:
    """Record the GPU's peak used memory during the block as `into[name]` (MiB)."""
    memory.reset()
    try:
        yield
    finally:
        into[name] = memory.peak_mib()


class TorchBaseline:
    """transformers' BertModel with SDPA attention, eager, on the same weights (the baseline)."""

    def __init__(self, source: Path, device: str, half: bool) -> None:
        import torch  # pants: no-infer-dep
        from transformers import AutoModel  # pants: no-infer-dep

        self.torch = torch
        self.device = device
        model = AutoModel.from_pretrained(source, attn_implementation="sdpa").eval().to(device)
        self.model = model.half() if half else model
        self.version = f"torch {torch.__version__}"

    def embed(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """Mean-pooled vectors, inputs copied in and results copied out as the engine does."""
        torch = self.torch
        width = max(len(s) for s in sequences)
        ids = np.zeros((len(sequences), width), np.int64)
        mask = np.zeros_like(ids)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)], mask[row, : len(sequence)] = sequence, 1
        with torch.inference_mode():
            ids_t = torch.from_numpy(ids).to(self.device)
            mask_t = torch.from_numpy(mask).to(self.device)
            hidden = self.model(input_ids=ids_t, attention_mask=mask_t).last_hidden_state
            weights = mask_t.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1).float() / weights.sum(1).float().clamp(min=1)
            return np.asarray(pooled.cpu().numpy())


def torch_unavailable() -> str | None:
    """Why PyTorch + transformers cannot serve as the baseline here, or None."""
    try:
        import torch  # pants: no-infer-dep  # noqa: F401
        import transformers  # pants: no-infer-dep  # noqa: F401
    except ImportError as error:
        return f"not measured: {error}"
    return None


KERNEL_LINE = re.compile(r"Operator=(\w+).*?SdpaKernel=(\w+)")
PROBE_MARK = "PROBE "


def probe_kernels(variants: dict[str, str], timeout: float = 120.0) -> dict[str, str]:
    """
    The attention kernels ONNX Runtime picks for each variant (label -> `DIR=KERNELS`) at s128 x
    batch 8, as it reports them under ORT_ENABLE_ATTENTION_KERNEL_DEBUG_INFO=1 (read when a
    session's CUDA provider starts, so in a child process). Its reports end with std::endl
    (flushed), so the child's flushed markers keep them apart.
    """
    env = {**os.environ, "ORT_ENABLE_ATTENTION_KERNEL_DEBUG_INFO": "1"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    command = [sys.executable, "-m", "bert_runtime.bench.gpu_bench"]
    for label, spec in variants.items():
        command += ["--probe", f"{label}={spec}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {label: "probe timed out" for label in variants}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:]
        return {label: f"probe failed: {tail}" for label in variants}
    found: dict[str, set[str]] = {label: set() for label in variants}
    label = ""
    for line in done.stdout.splitlines():
        if line.startswith(PROBE_MARK):
            label = line[len(PROBE_MARK) :].strip()
            continue
        for op, kernel in KERNEL_LINE.findall(line):
            found.setdefault(label, set()).add(f"{op}: {kernel}")
    return {
        label: "; ".join(sorted(kernels)) or "no kernel report (not a CUDA session)"
        for label, kernels in found.items()
        if label in variants
    }


SWAGGER_UI = "swagger-ui-dist-5.35.0.tgz"


def bert_api_unavailable() -> str | None:
    """Why the HTTP service cannot run here, or None."""
    import importlib.util

    for module in ("bert_api", "litestar", "uvicorn", "msgspec"):
        if importlib.util.find_spec(module) is None:
            return f"not measured: {module} is not importable here"
    spec = importlib.util.find_spec("bert_api")
    assert spec is not None and spec.origin is not None
    # The service serves its docs pages from this tarball, which Pants fetches at build time
    # (bert_api/BUILD): a source tree has it only when it was put there (docs/BENCHMARKS.md).
    if not (Path(spec.origin).parent / SWAGGER_UI).is_file():
        return (
            f"not measured: bert_api/{SWAGGER_UI} is missing (the service will not start without "
            "it); fetch it from registry.npmjs.org into src/python/bert_api/ (docs/BENCHMARKS.md)"
        )
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(env: dict[str, str], log: Path, timeout: float) -> Iterator[str]:
    """`python -m bert_api.serve` with `env`, ready (GET /v2/health/ready), stopped after."""
    port = _free_port()
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **env}
    environment.update({"HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "WARNING"})
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "bert_api.serve"],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited {process.returncode}: {log.read_text()[-800:]}")
            try:
                with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"server not ready in {timeout}s: {log.read_text()[-800:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def drive_server(url: str, requests: list[list[str]], clients: int, seconds: float) -> float:
    """Texts/s through POST /embed from `clients` threads, each sending `requests` in turn."""
    done = [0] * clients
    failures: list[str] = []
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        position = index
        while time.monotonic() < stop and not failures:
            texts = requests[position % len(requests)]
            body = json.dumps({"inputs": texts}).encode()
            request = urllib.request.Request(
                f"{url}/embed", body, {"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    answer.read()
            except OSError as error:
                failures.append(str(error))
                return
            done[index] += len(texts)
            position += clients

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"a request failed: {failures[0]}")
    return sum(done) / (time.monotonic() - started)


def environment_facts() -> dict[str, Any]:
    """Versions and the GPU, for the report's header."""
    import onnxruntime as ort

    facts: dict[str, Any] = {
        "python": sys.version.split()[0],
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
    }
    binary = shutil.which("nvidia-smi")
    if binary:
        query = "--query-gpu=name,driver_version,memory.total"
        done = subprocess.run(
            [binary, query, "--format=csv,noheader"], capture_output=True, text=True, check=False
        )
        facts["gpu"] = done.stdout.strip()
    return facts
