"""ONNX Runtime's CUDA provider options, typed and validated, for EngineConfig.

Option names and values are the CUDA provider's own (onnxruntime-gpu 1.31.1:
`core/providers/cuda/cuda_execution_provider_info.cc`; the names were read from that release's
`libonnxruntime_providers_cuda.so`). Every default here is provisional: no GPU has measured them
yet. Each names the `bench/gpu_bench.py` table that decides it (docs/BENCHMARKS.md, H200).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from bert_runtime.errors import ConfigError


class ArenaExtendStrategy(StrEnum):
    """How the CUDA memory arena grows (`arena_extend_strategy`)."""

    NEXT_POWER_OF_TWO = "next_power_of_two"
    SAME_AS_REQUESTED = "same_as_requested"

    @property
    def ort_name(self) -> str:
        """The provider's own spelling."""
        return (
            "kNextPowerOfTwo"
            if self is ArenaExtendStrategy.NEXT_POWER_OF_TWO
            else "kSameAsRequested"
        )


class AttentionKernel(StrEnum):
    """
    ONNX Runtime's attention backends (`sdpa_kernel`, a bit mask of `AttentionBackend` in
    contrib_ops/cpu/bert/attention_common.h). The unfused `math` kernel cannot be switched off.
    """

    FLASH = "flash"
    EFFICIENT = "efficient"
    TRT_FUSED = "trt_fused"
    CUDNN_FLASH = "cudnn_flash"
    MATH = "math"
    TRT_FLASH = "trt_flash"


_KERNEL_BITS = {
    AttentionKernel.FLASH: 1,
    AttentionKernel.EFFICIENT: 2,
    AttentionKernel.TRT_FUSED: 4,
    AttentionKernel.CUDNN_FLASH: 8,
    AttentionKernel.MATH: 16,
    AttentionKernel.TRT_FLASH: 32,
}


def parse_attention_kernels(text: str) -> frozenset[AttentionKernel]:
    """`flash,cudnn_flash` -> those kernels; `auto` or empty -> none named (ONNX Runtime picks)."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if names == ["auto"]:
        return frozenset()
    unknown = [name for name in names if name not in AttentionKernel.__members__.values()]
    if unknown:
        valid = ", ".join(kernel.value for kernel in AttentionKernel)
        raise ConfigError(
            f"cuda_attention_kernels: unknown kernel {', '.join(unknown)} (use auto, or some of "
            f"{valid})"
        )
    return frozenset(AttentionKernel(name) for name in names)


def attention_kernel_mask(kernels: Iterable[AttentionKernel]) -> int:
    """The `sdpa_kernel` value: 0 lets ONNX Runtime choose, else the named backends' bits."""
    return sum(_KERNEL_BITS[kernel] for kernel in set(kernels))


@dataclass(frozen=True)
class CudaOptions:
    """
    The CUDA provider's options we set (ignored on CPU). Defaults, all provisional:

    - `arena_extend_strategy`: ONNX Runtime's own (next power of two). gpu_bench's memory table
      compares both strategies' peak memory at the largest batch.
    - `memory_limit_bytes`: none (`gpu_mem_limit` unset: the arena may use the whole GPU, which
      one engine process per GPU is meant to own).
    - `use_tf32`: off, unlike ONNX Runtime's default. fp32 on CUDA is the accuracy reference
      (fp16 is the speed path), and TF32 matmuls round to 10 mantissa bits; gpu_bench's accuracy
      table shows fp32 with TF32 on and off against the fp32 reference.
    - `attention_kernels`: none named, so ONNX Runtime picks per shape (cuDNN SDPA, TensorRT fused,
      flash, memory efficient, unfused); gpu_bench's fused-attention table compares it with
      `math` (unfused) alone.
    - `graphs`: off. CUDA graphs replay a bucket's kernels without launch overhead, for the engine
      path that pads batches to fixed buckets (serving/cuda_graphs.py); gpu_bench's CUDA graphs
      table measures small batches with and without them.
    - `skip_layer_norm_strict`: off (ONNX Runtime's default): SkipLayerNormalization accumulates
      fp16 in fp16. gpu_bench's accuracy table decides whether fp16 meets cosine 0.999 without it.
    """

    arena_extend_strategy: ArenaExtendStrategy = ArenaExtendStrategy.NEXT_POWER_OF_TWO
    memory_limit_bytes: int | None = None
    use_tf32: bool = False
    attention_kernels: frozenset[AttentionKernel] = field(default_factory=frozenset)
    graphs: bool = False
    skip_layer_norm_strict: bool = False

    def __post_init__(self) -> None:
        if self.memory_limit_bytes is not None and self.memory_limit_bytes < 2**20:
            raise ConfigError(
                f"cuda_memory_limit_bytes must be at least 1 MiB (1048576), "
                f"got {self.memory_limit_bytes}"
            )

    def provider_options(self, device_id: int) -> dict[str, str]:
        """The options as ONNX Runtime's CUDA provider takes them (all strings)."""
        options = {
            "device_id": str(device_id),
            "arena_extend_strategy": self.arena_extend_strategy.ort_name,
            "use_tf32": _flag(self.use_tf32),
            "sdpa_kernel": str(attention_kernel_mask(self.attention_kernels)),
            "enable_cuda_graph": _flag(self.graphs),
            "enable_skip_layer_norm_strict_mode": _flag(self.skip_layer_norm_strict),
        }
        if self.memory_limit_bytes is not None:
            options["gpu_mem_limit"] = str(self.memory_limit_bytes)
        return options


def _flag(value: bool) -> str:
    return "1" if value else "0"
