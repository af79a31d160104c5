"""Service settings, read from environment variables and validated at start-up.

msgspec (already under Litestar) does the typed conversion, so a bad value stops start-up with an
error that names the variable instead of failing on the first request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from bert_runtime import BatcherConfig, Device, EngineConfig, Precision, TruncationPolicy
from bert_runtime.config import (
    DEFAULT_CACHE_DIR,
    check_precision_for_device,
    default_precision,
)
from bert_runtime.cpus import cpu_budget
from bert_runtime.cuda_options import ArenaExtendStrategy, CudaOptions, parse_attention_kernels

# The queue's defaults are the library's: one place for each.
_QUEUE = BatcherConfig()


class SettingsError(ValueError):
    """The environment holds an invalid setting; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, rename="upper"):
    """Every setting of the service; the environment variable is the field name in upper case."""

    # The model: a Hugging Face repo id (optionally `@revision`), a local checkpoint directory, or a
    # directory already prepared by bert_runtime (it has a manifest.json).
    model_name: str = "google-bert/bert-base-uncased"
    # The name clients use in URLs (/v1/models/<name>).
    served_model_name: Annotated[
        str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    ] = "bert"
    max_sequence_length: Annotated[int, msgspec.Meta(ge=2, le=512)] = 128
    # The batch budget: rows, and tokens counted on the padded shape. Left out, the device's own
    # (bert_runtime.config.default_budget: 32 rows and 1024 tokens on CPU, 512 tokens for an int8
    # model, 256 rows and 32768 tokens on CUDA).
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=1024)] | None = None
    onnx_execution_provider: Literal["CUDA", "CPU"] = "CPU"
    # fp32 | int8 on CPU, fp32 | fp16 on CUDA; empty picks fp32 on CPU and fp16 on CUDA.
    precision: Literal["", "fp32", "fp16", "int8"] = ""
    # Where prepared models are kept between starts (a volume in Kubernetes).
    model_cache_dir: str = DEFAULT_CACHE_DIR
    truncation: Literal["truncate", "reject"] = "truncate"
    max_batch_tokens: Annotated[int, msgspec.Meta(ge=2)] | None = None
    max_queue_delay_ms: Annotated[float, msgspec.Meta(ge=0, le=1000)] = _QUEUE.max_queue_delay_ms
    # A memory bound: texts waiting at most.
    max_queue_size: Annotated[int, msgspec.Meta(ge=1)] = _QUEUE.max_queue_size
    # How long a request's texts may wait to start when the client names no budget
    # (X-Request-Timeout); longer waits are refused at once with 429.
    max_queue_wait_ms: Annotated[float, msgspec.Meta(gt=0, le=3_600_000)] = _QUEUE.max_queue_wait_ms
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 2 * 1024 * 1024
    max_items_per_request: Annotated[int, msgspec.Meta(ge=1)] = 256
    max_chars_per_item: Annotated[int, msgspec.Meta(ge=1)] = 20_000
    # Bearer token required on inference routes when set; health and metrics stay open.
    api_key: str = ""
    shutdown_grace_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 30.0
    # Open client connections at most; one more gets 503 and is closed at once.
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1024
    # Slow or idle clients: a request's headers (from its first byte, or the connection's start)
    # and its body must arrive within these; a kept-alive connection idles this long at most.
    header_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    body_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    # A request's header bytes at most (request line included); more gets 431 and close.
    max_header_bytes: Annotated[int, msgspec.Meta(ge=1024, le=16 * 1024 * 1024)] = 65536
    keep_alive_seconds: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 5
    # Front-end processes (HTTP, JSON, tokenization) feeding the one engine process; 1 serves in
    # one process. 0: one per usable CPU but one (left to the engine), at most 8; so one process
    # on 2 CPUs, where the socket between processes costs more than the second CPU gives
    # (docs/BENCHMARKS.md). Usable: the affinity mask within the cgroup CPU limit (cpus.py).
    workers: Annotated[int, msgspec.Meta(ge=0, le=64)] = 0
    # ONNX Runtime's intra-op threads in the engine process. 0: one per physical core, or the
    # CPUs the process may use where a cgroup CPU limit or its affinity leaves fewer (cpus.py);
    # with 0 a small model's small batches may run on one thread (thread_split.py).
    intra_op_threads: Annotated[int, msgspec.Meta(ge=0, le=1024)] = 0
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    # /metrics on a port of its own (on HOST), so a NetworkPolicy can let only Prometheus reach
    # it; the HTTP port then answers /metrics with 404. 0: on PORT, beside the API.
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    # Back ONNX Runtime's buffers with transparent huge pages (glibc tunable; serve re-executes
    # itself once to set it), for fewer TLB misses; on a 2-vCPU VM the throughput effect was within
    # noise (docs/BENCHMARKS.md). `false` leaves malloc as is.
    huge_pages: bool = True
    # CUDA provider options (bert_runtime.cuda_options.CudaOptions, where each default's reason
    # and the benchmark that decides it are given); read on CUDA only.
    cuda_arena_extend_strategy: Literal[
        "next_power_of_two", "same_as_requested"
    ] = ArenaExtendStrategy.NEXT_POWER_OF_TWO.value
    cuda_memory_limit_bytes: Annotated[int, msgspec.Meta(ge=2**20)] | None = None
    cuda_use_tf32: bool = False
    # `auto` (ONNX Runtime picks per shape) or a comma-separated list of attention kernels.
    cuda_attention_kernels: str = "auto"
    cuda_graphs: bool = False
    cuda_skip_layer_norm_strict: bool = False
    # Prepare the model for padding-free attention (ONNX Runtime's packing mode).
    cuda_packing: bool = False

    @property
    def worker_count(self) -> int:
        return self.workers or max(1, min(cpu_budget().usable - 1, 8))

    @property
    def separate_metrics_port(self) -> bool:
        return self.metrics_port not in (0, self.port)

    @property
    def device(self) -> Device:
        return Device.CUDA if self.onnx_execution_provider == "CUDA" else Device.CPU

    @property
    def resolved_precision(self) -> Precision:
        return Precision(self.precision) if self.precision else default_precision(self.device)

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            device=self.device,
            max_sequence_length=self.max_sequence_length,
            truncation=TruncationPolicy(self.truncation),
            max_batch_size=self.batch_size,
            max_batch_tokens=self.max_batch_tokens,
            intra_op_threads=self.intra_op_threads or None,
            cuda=self.cuda_options(),
        )

    def cuda_options(self) -> CudaOptions:
        return CudaOptions(
            arena_extend_strategy=ArenaExtendStrategy(self.cuda_arena_extend_strategy),
            memory_limit_bytes=self.cuda_memory_limit_bytes,
            use_tf32=self.cuda_use_tf32,
            attention_kernels=parse_attention_kernels(self.cuda_attention_kernels),
            graphs=self.cuda_graphs,
            skip_layer_norm_strict=self.cuda_skip_layer_norm_strict,
        )

    def batcher_config(self) -> BatcherConfig:
        return BatcherConfig(
            max_queue_delay_ms=self.max_queue_delay_ms,
            max_queue_size=self.max_queue_size,
            max_queue_wait_ms=self.max_queue_wait_ms,
        )

    def __repr__(self) -> str:
        # Never print the API key.
        shown = {f: getattr(self, f) for f in self.__struct_fields__ if f != "api_key"}
        return f"Settings({shown}, api_key={'set' if self.api_key else 'unset'})"


# Values compared case-insensitively: `cuda` and `CUDA` mean the same to an operator.
_UPPERCASED = ("ONNX_EXECUTION_PROVIDER", "LOG_LEVEL")
_LOWERCASED = (
    "PRECISION",
    "TRUNCATION",
    "LOG_FORMAT",
    "CUDA_ARENA_EXTEND_STRATEGY",
    "CUDA_ATTENTION_KERNELS",
)
ENV_VARS: tuple[str, ...] = tuple(field.encode_name for field in msgspec.structs.fields(Settings))
# Secrets may come from a file instead (a mounted Kubernetes Secret): `<NAME>_FILE` holds its path.
FILE_VARIABLES = {"API_KEY_FILE": "API_KEY"}


# Settings that are gone, and what to set instead: a deployment still setting one is told, not
# silently served with another budget.
RETIRED = {
    "CPU_SLICE_TOKENS": "MAX_BATCH_TOKENS (one token budget per device; 1024 on CPU by default)",
}


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from `environ` (usually os.environ), ignoring unrelated variables."""
    for name, instead in RETIRED.items():
        if name in environ:
            raise SettingsError(f"invalid setting: {name} is no longer read: set {instead}")
    raw = {name: environ[name] for name in ENV_VARS if name in environ}
    for file_variable, name in FILE_VARIABLES.items():
        if file_variable in environ:
            raw[name] = _read_secret_file(file_variable, name, environ)
    for name in _UPPERCASED:
        if name in raw:
            raw[name] = raw[name].strip().upper()
    for name in _LOWERCASED:
        if name in raw:
            raw[name] = raw[name].strip().lower()
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
        # Cross-field checks live in the runtime's config types; surface them the same way.
        settings.engine_config()
        settings.batcher_config()
        check_precision_for_device(settings.device, settings.resolved_precision)
        _check_packing(settings)
    except msgspec.ValidationError as error:
        raise SettingsError(f"invalid setting: {_name_variable(str(error))}") from error
    except ValueError as error:
        # Cross-field errors speak of config fields; name the environment variables instead.
        message = re.sub(
            r"\b(" + "|".join(name.lower() for name in ENV_VARS) + r"|precision|device)\b",
            lambda match: _FIELD_TO_VARIABLE.get(match.group(0), match.group(0).upper()),
            str(error),
        )
        raise SettingsError(f"invalid setting: {message}") from error
    return settings


_FIELD_TO_VARIABLE = {"max_batch_size": "BATCH_SIZE", "device": "ONNX_EXECUTION_PROVIDER"}


def _check_packing(settings: Settings) -> None:
    # A packed model has no CPU kernels, and its shapes change with every batch (no graphs).
    if settings.cuda_packing and settings.device is not Device.CUDA:
        raise ValueError("cuda_packing needs device CUDA (its operators have no CPU kernels)")
    if settings.cuda_packing and settings.cuda_graphs:
        raise ValueError("cuda_graphs cannot run a packed model (cuda_packing)")


def _read_secret_file(file_variable: str, name: str, environ: Mapping[str, str]) -> str:
    if name in environ:
        raise SettingsError(f"invalid setting: set {name} or {file_variable}, not both")
    path = Path(environ[file_variable])
    try:
        value = path.read_text().strip()
    except OSError as error:
        raise SettingsError(
            f"invalid setting: {file_variable}: cannot read {path}: {error.strerror}"
        ) from None
    if not value:
        raise SettingsError(f"invalid setting: {file_variable}: {path} is empty")
    return value


def _name_variable(message: str) -> str:
    # msgspec says "... - at `$.BATCH_SIZE`"; an operator wants "BATCH_SIZE: ...".
    head, sep, where = message.rpartition(" - at `$.")
    return f"{where.rstrip('`')}: {head}" if sep else message
