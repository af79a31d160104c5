from __future__ import annotations

import pytest

from bert_runtime.config import Device, EngineConfig
from bert_runtime.cuda_options import (
    ArenaExtendStrategy,
    AttentionKernel,
    CudaOptions,
    attention_kernel_mask,
    parse_attention_kernels,
)
from bert_runtime.errors import ConfigError


def test_default_options_are_the_providers_spelling_of_our_defaults() -> None:
    assert CudaOptions().provider_options(device_id=1) == {
        "device_id": "1",
        "arena_extend_strategy": "kNextPowerOfTwo",
        "use_tf32": "0",
        "sdpa_kernel": "0",
        "enable_cuda_graph": "0",
        "enable_skip_layer_norm_strict_mode": "0",
    }


def test_every_option_reaches_the_provider() -> None:
    options = CudaOptions(
        arena_extend_strategy=ArenaExtendStrategy.SAME_AS_REQUESTED,
        memory_limit_bytes=8 << 30,
        use_tf32=True,
        attention_kernels=frozenset({AttentionKernel.CUDNN_FLASH, AttentionKernel.TRT_FUSED}),
        graphs=True,
        skip_layer_norm_strict=True,
    ).provider_options(device_id=0)
    assert options == {
        "device_id": "0",
        "arena_extend_strategy": "kSameAsRequested",
        "use_tf32": "1",
        "sdpa_kernel": "12",
        "enable_cuda_graph": "1",
        "enable_skip_layer_norm_strict_mode": "1",
        "gpu_mem_limit": str(8 << 30),
    }


@pytest.mark.parametrize(
    ("text", "mask"),
    [
        ("auto", 0),
        ("", 0),
        ("math", 16),
        ("flash, efficient", 3),
        ("TRT_FUSED,cudnn_flash,trt_flash", 4 + 8 + 32),
        ("flash,flash", 1),
    ],
)
def test_attention_kernel_names_become_onnx_runtimes_bit_mask(text: str, mask: int) -> None:
    # The bits are AttentionBackend's (onnxruntime contrib_ops/cpu/bert/attention_common.h).
    assert attention_kernel_mask(parse_attention_kernels(text)) == mask


def test_an_unknown_attention_kernel_is_refused_with_the_valid_names() -> None:
    with pytest.raises(
        ConfigError, match="cuda_attention_kernels: unknown kernel xformers .*flash"
    ):
        parse_attention_kernels("flash,xformers")


def test_a_memory_limit_below_one_mebibyte_is_refused() -> None:
    with pytest.raises(ConfigError, match="cuda_memory_limit_bytes"):
        CudaOptions(memory_limit_bytes=4096)


def test_cuda_graphs_need_cuda_and_io_binding() -> None:
    with pytest.raises(ConfigError, match="cuda_graphs needs device cuda"):
        EngineConfig(cuda=CudaOptions(graphs=True))
    with pytest.raises(ConfigError, match="cuda_graphs needs io_binding"):
        EngineConfig(device=Device.CUDA, io_binding=False, cuda=CudaOptions(graphs=True))
    assert EngineConfig(device=Device.CUDA, cuda=CudaOptions(graphs=True)).cuda.graphs


def test_provider_options_are_ignored_on_cpu() -> None:
    # A shared configuration may carry them; only behaviour that needs CUDA is refused on CPU.
    config = EngineConfig(cuda=CudaOptions(use_tf32=True, memory_limit_bytes=2**30))
    assert config.device is Device.CPU
