"""Configuration types shared by preparation and serving.

Values are validated when constructed, so a bad setting fails at start-up with a message naming the
field, not
later in the middle of a request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bert_runtime.cuda_options import CudaOptions
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
class BatchBudget:
    """
    How big one batch may be on a device: rows, and tokens counted on the padded shape (rows x
    padded length). The one budget both the dynamic batcher and direct calls plan batches with.
    """

    max_rows: int
    max_tokens: int
    # Padded lengths round up to this multiple, so few distinct shapes reach the session.
    pad_multiple: int = 8
    # The least share of real tokens in a batch (padded to its longest text), in the batcher's
    # choice (the anchor's own request's texts too) and a direct call's groups: on CPU the time
    # follows padded tokens, so a text much longer than the rest waits for a later batch rather
    # than pad them all to its length (0: any padding; a GPU fills its cores either way). CPU's
    # 0.8 against 0.5 ran 16-26% more texts a second at 8 and 32 connections (docs/BENCHMARKS.md,
    # "Batch fill on CPU"); holding a request's own texts to it, 21-27% more at 32 texts a request.
    min_fill: float = 0.0
    # What one more run costs, in tokens (measured at warm-up on CPU: run_overhead.py): rows that
    # would break `min_fill` still join a batch when the padding they add is no more than this,
    # since running them apart costs a run. 0: `min_fill` alone decides.
    run_overhead_tokens: int = 0

    def __post_init__(self) -> None:
        _require(self.max_rows >= 1, f"max_batch_size must be >= 1, got {self.max_rows}")
        _require(self.max_tokens >= 1, f"max_batch_tokens must be >= 1, got {self.max_tokens}")
        _require(self.pad_multiple >= 1, f"pad_multiple must be >= 1, got {self.pad_multiple}")
        _require(0 <= self.min_fill <= 1, f"min_fill must be within 0..1, got {self.min_fill}")
        _require(
            self.run_overhead_tokens >= 0,
            f"run_overhead_tokens must be >= 0, got {self.run_overhead_tokens}",
        )

    def check_fits(self, max_sequence_length: int) -> None:
        """Raise ConfigError when one maximum-length text alone would exceed the token budget."""
        padded = -(-max_sequence_length // self.pad_multiple) * self.pad_multiple
        _require(
            self.max_tokens >= padded,
            f"max_batch_tokens ({self.max_tokens}) is smaller than one padded sequence of "
            f"max_sequence_length {max_sequence_length} ({padded} tokens): "
            "such a text could never run",
        )


# Per device: (rows, padded tokens). CPU: 1024 tokens keeps a batch's activations in the CPU's
# cache (bert-base fp32, seq 128: docs/BENCHMARKS.md, slice_sweep); a larger batch only waits
# longer. CUDA (provisional, until gpu_bench's batch sweep on the H200 decides): 256 rows of 128
# tokens. A GPU with 132 SMs needs thousands of tokens per GEMM to fill its tensor cores (bert-base
# at 32 x 128 is 4096 rows, ~31 per SM); 256 x 128 fp16 is ~0.2 GB of feed-forward activations,
# nothing next to an H200's 141 GB; and at the targeted 20,000 sequences/s such a batch takes
# ~13 ms, within the batcher's deadlines. The sweep's largest shapes (s128 x 128, 256) are these.
_DEFAULT_BUDGETS: dict[Device, tuple[int, int, float]] = {
    Device.CPU: (32, 1024, 0.8),
    Device.CUDA: (256, 32768, 0.0),
}


# int8 on CPU passes over each activation more often (quantize.py's per-row scales), so it runs
# fastest from a smaller batch: 512 tokens, 3-12% more seq/s than 1024 at seq 128 (slice_sweep on
# all-MiniLM-L6-v2, all-mpnet-base-v2 and bert-base size; docs/BENCHMARKS.md, issue 27). It
# always fits: texts are at most BERT_MAX_POSITIONS (512) tokens.
_CPU_INT8_TOKENS = 512


def default_budget(
    device: Device,
    max_rows: int | None = None,
    max_tokens: int | None = None,
    precision: Precision = Precision.FP32,
) -> BatchBudget:
    """The device's batch budget for a model of `precision`, with any bound the caller sets."""
    rows, tokens, min_fill = _DEFAULT_BUDGETS[device]
    if device is Device.CPU and precision is Precision.INT8:
        tokens = _CPU_INT8_TOKENS
    return BatchBudget(
        rows if max_rows is None else max_rows,
        tokens if max_tokens is None else max_tokens,
        min_fill=min_fill,
    )


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
    # None lets ONNX Runtime use one thread per physical core, or the CPUs the process may use
    # where a cgroup CPU limit or its affinity leaves fewer (cpus.py).
    intra_op_threads: int | None = None
    # Let ONNX Runtime's threads busy-wait for the next run (its default): a little less latency
    # back to back, at the cost of cores a server needs for its requests (session.py).
    spin_wait: bool = False
    # The batch budget (BatchBudget); None takes the device's default (default_budget).
    max_batch_size: int | None = None
    max_batch_tokens: int | None = None
    warmup: bool = True
    # CUDA provider options (cuda_options.CudaOptions); ignored on CPU, except that CUDA graphs
    # need CUDA.
    cuda: CudaOptions = field(default_factory=CudaOptions)

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
        self.budget.check_fits(self.max_sequence_length)
        if self.cuda.graphs:
            _require(self.device is Device.CUDA, "cuda_graphs needs device cuda")
            # Graphs replay into fixed device buffers, which only IO binding provides.
            _require(self.io_binding, "cuda_graphs needs io_binding")

    @property
    def budget(self) -> BatchBudget:
        """The batch budget of an fp32 or fp16 model; `budget_for` knows int8's."""
        return self.budget_for(Precision.FP32)

    def budget_for(self, precision: Precision) -> BatchBudget:
        """The batch budget a model of `precision` runs with (Engine asks with its manifest's)."""
        return default_budget(self.device, self.max_batch_size, self.max_batch_tokens, precision)


@dataclass(frozen=True)
class BatcherConfig:
    """The dynamic batcher's queue (the batches' size is the engine's BatchBudget)."""

    max_queue_delay_ms: float = 5.0
    # Texts waiting at most: a bound on memory; beyond it submissions are Overloaded.
    max_queue_size: int = 2048
    # How long a submission may wait to start when its caller names no deadline; one that would
    # wait longer is refused at once (Overloaded), one still waiting then is dropped.
    max_queue_wait_ms: float = 5000.0

    def __post_init__(self) -> None:
        _require(
            self.max_queue_delay_ms >= 0,
            f"max_queue_delay_ms must be >= 0, got {self.max_queue_delay_ms}",
        )
        _require(
            self.max_queue_size >= 1, f"max_queue_size must be >= 1, got {self.max_queue_size}"
        )
        _require(
            self.max_queue_wait_ms > 0,
            f"max_queue_wait_ms must be > 0, got {self.max_queue_wait_ms}",
        )
