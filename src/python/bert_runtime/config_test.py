from __future__ import annotations

from typing import Any

import pytest

from bert_runtime.config import (
    BatchBudget,
    BatcherConfig,
    Device,
    EngineConfig,
    Precision,
    check_precision_for_device,
)
from bert_runtime.errors import ConfigError


def test_defaults_are_valid_and_fit_together() -> None:
    engine = EngineConfig()
    engine.budget.check_fits(engine.max_sequence_length)
    BatcherConfig()


@pytest.mark.parametrize("length", [0, 1, 513, -5])
def test_engine_rejects_sequence_length_outside_bert_positions(length: int) -> None:
    with pytest.raises(ConfigError, match="max_sequence_length"):
        EngineConfig(max_sequence_length=length)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("intra_op_threads", 0),
        ("device_id", -1),
        ("max_batch_size", 0),
        ("max_batch_tokens", -1),
    ],
)
def test_engine_error_names_the_bad_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        EngineConfig(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_queue_delay_ms", -1.0),
        ("max_queue_size", 0),
        ("max_queue_wait_ms", 0.0),
    ],
)
def test_batcher_error_names_the_bad_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        BatcherConfig(**{field: value})


def test_token_budget_must_hold_one_padded_max_length_sequence() -> None:
    config = BatchBudget(max_rows=8, max_tokens=128, pad_multiple=8)
    config.check_fits(128)
    # 121 tokens pad to 128: fits exactly. 129 pads to 136: can never run.
    config.check_fits(121)
    with pytest.raises(ConfigError, match="136 tokens"):
        config.check_fits(129)


@pytest.mark.parametrize(
    ("device", "precision", "ok"),
    [
        (Device.CPU, Precision.FP32, True),
        (Device.CPU, Precision.INT8, True),
        (Device.CPU, Precision.FP16, False),
        (Device.CUDA, Precision.FP16, True),
        (Device.CUDA, Precision.FP32, True),
        (Device.CUDA, Precision.INT8, False),
    ],
)
def test_precision_device_compatibility(device: Device, precision: Precision, ok: bool) -> None:
    if ok:
        check_precision_for_device(device, precision)
    else:
        with pytest.raises(
            ConfigError, match=f"{precision.value} is not supported on {device.value}"
        ):
            check_precision_for_device(device, precision)


def test_enums_parse_from_their_lowercase_names() -> None:
    assert Device("cuda") is Device.CUDA
    assert Precision("int8") is Precision.INT8


def test_cuda_batches_default_to_a_gpu_sized_budget() -> None:
    # Provisional until gpu_bench's batch sweep on an H200 (config._DEFAULT_BUDGETS says why).
    assert EngineConfig(device=Device.CUDA).budget == BatchBudget(256, 32768)
    assert EngineConfig().budget == BatchBudget(32, 1024, min_fill=0.8)


def test_int8_on_cpu_defaults_to_smaller_batches_unless_told() -> None:
    cpu = EngineConfig()
    assert cpu.budget_for(Precision.INT8) == BatchBudget(32, 512, min_fill=0.8)
    assert cpu.budget_for(Precision.FP32) == cpu.budget
    assert EngineConfig(max_batch_tokens=2048).budget_for(Precision.INT8).max_tokens == 2048
    cuda = EngineConfig(device=Device.CUDA)
    assert cuda.budget_for(Precision.INT8) == cuda.budget
