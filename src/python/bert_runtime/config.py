"""Configuration types shared by preparation and serving.

Values are validated when constructed, so a bad setting fails at start-up with a message naming the
field, not
later in the middle of a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bert_runtime.errors import ConfigError

# Where prepared models are kept by default: load_engine's and the service's MODEL_CACHE_DIR.
DEFAULT_CACHE_DIR = "~/.cache/bert-serve"

# bert-base's position embedding table has 512 rows; no BERT-family checkpoint we serve has more.
BERT_MAX_POSITIONS = 512


class Device(StrEnum):
    """Where a model runs."""

    CPU = "cpu"
    CUDA = "cuda"


class Precision(StrEnum):
    """Numeric precision of a prepared model."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


class Pooling(StrEnum):
    """How token embeddings become one sentence embedding."""

    CLS = "cls"
    MEAN = "mean"


class TruncationPolicy(StrEnum):
    """What happens to a text longer than the maximum sequence length."""

    TRUNCATE = "truncate"
    REJECT = "reject"


class TruncationSide(StrEnum):
    """Which end of a text too long for the model is cut (transformers' `truncation_side`)."""

    RIGHT = "right"
    LEFT = "left"


@dataclass(frozen=True)
class Truncation:
    """
    One call's own truncation (Text Embeddings Inference's `truncate` and `truncation_direction`):
    a policy over the engine's (None keeps the engine's) and the end to cut.
    """

    policy: TruncationPolicy | None = None
    side: TruncationSide = TruncationSide.RIGHT


# fp16 kernels are a CUDA feature (CPU runs them slower than fp32); ONNX Runtime's dynamic int8
# kernels are CPU ones.
_PRECISIONS_BY_DEVICE: dict[Device, frozenset[Precision]] = {
    Device.CPU: frozenset({Precision.FP32, Precision.INT8}),
    Device.CUDA: frozenset({Precision.FP32, Precision.FP16}),
}


def default_precision(device: Device) -> Precision:
    """The precision a model is prepared at when none is asked: fp16 on CUDA, fp32 on CPU."""
    return Precision.FP16 if device is Device.CUDA else Precision.FP32


def check_precision_for_device(device: Device, precision: Precision) -> None:
    """Raise ConfigError when `precision` has no fast kernels on `device`."""
    allowed = _PRECISIONS_BY_DEVICE[device]
    if precision not in allowed:
        names = ", ".join(sorted(p.value for p in allowed))
        raise ConfigError(
            f"precision {precision.value} is not supported on {device.value} (use {names})"
        )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class EngineConfig:
    """How an Engine loads and runs a prepared model."""

    device: Device = Device.CPU
    device_id: int = 0
    # Strict: demanding CUDA and getting CPU is an error, not a silent slowdown.
    strict_device: bool = True
    # On CUDA, bind inputs/outputs explicitly so only the outputs a task needs are copied back.
    io_binding: bool = True
    max_sequence_length: int = 128
    truncation: TruncationPolicy = TruncationPolicy.TRUNCATE
    # None lets ONNX Runtime use one thread per physical core.
    intra_op_threads: int | None = None
    # CPU only: a batch whose padded shape holds more tokens than this runs as consecutive slices,
    # each padded to its own longest row, so activations stay in the CPU cache (bert-base fp32 at
    # seq 128, batch 32: docs/BENCHMARKS.md). 0 runs every batch whole, as on CUDA, where large
    # batches are what fills the GPU.
    cpu_slice_tokens: int = 1024
    # Direct calls (embed, fill_mask, classify, classify_pairs, run_texts) given many texts run
    # them as batches of at most this many padded tokens, so a whole corpus is never one batch
    # (which on CUDA would have to fit in GPU memory at once). The Batcher has its own bound.
    direct_batch_tokens: int = 8192
    warmup: bool = True

    def __post_init__(self) -> None:
        _require(
            2 <= self.max_sequence_length <= BERT_MAX_POSITIONS,
            f"max_sequence_length must be between 2 and {BERT_MAX_POSITIONS}, "
            f"got {self.max_sequence_length}",
        )
        _require(self.device_id >= 0, f"device_id must be >= 0, got {self.device_id}")
        _require(
            self.intra_op_threads is None or self.intra_op_threads >= 1,
            f"intra_op_threads must be >= 1 or None, got {self.intra_op_threads}",
        )
        _require(
            self.cpu_slice_tokens >= 0,
            f"cpu_slice_tokens must be >= 0, got {self.cpu_slice_tokens}",
        )
        _require(
            self.direct_batch_tokens >= 1,
            f"direct_batch_tokens must be >= 1, got {self.direct_batch_tokens}",
        )


@dataclass(frozen=True)
class BatcherConfig:
    """Bounds of the dynamic batcher."""

    max_batch_size: int = 32
    # Token budget of one batch, counted on the padded shape (batch rows x padded length).
    max_batch_tokens: int = 8192
    max_queue_delay_ms: float = 5.0
    max_queue_size: int = 1024
    # Padded lengths are rounded up to this multiple, so few distinct shapes reach the session.
    pad_to_multiple_of: int = 8

    def __post_init__(self) -> None:
        _require(
            self.max_batch_size >= 1, f"max_batch_size must be >= 1, got {self.max_batch_size}"
        )
        _require(
            self.max_batch_tokens >= 1,
            f"max_batch_tokens must be >= 1, got {self.max_batch_tokens}",
        )
        _require(
            self.max_queue_delay_ms >= 0,
            f"max_queue_delay_ms must be >= 0, got {self.max_queue_delay_ms}",
        )
        _require(
            self.max_queue_size >= 1, f"max_queue_size must be >= 1, got {self.max_queue_size}"
        )
        _require(
            self.pad_to_multiple_of >= 1,
            f"pad_to_multiple_of must be >= 1, got {self.pad_to_multiple_of}",
        )

    def check_fits(self, max_sequence_length: int) -> None:
        """Raise ConfigError when one maximum-length text alone would exceed the token budget."""
        padded = -(-max_sequence_length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        _require(
            self.max_batch_tokens >= padded,
            f"max_batch_tokens ({self.max_batch_tokens}) is smaller than one padded sequence of "
            f"max_sequence_length {max_sequence_length} ({padded} tokens): "
            "such a text could never run",
        )
