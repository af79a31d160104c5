from __future__ import annotations

from pathlib import Path

import pytest

from bert_api import settings as settings_module
from bert_api.settings import ENV_VARS, Settings, SettingsError, load_settings
from bert_runtime import ArenaExtendStrategy, AttentionKernel, BatchBudget, CudaOptions, Device
from bert_runtime.cpus import CpuBudget


def test_defaults_serve_bert_base_on_cpu() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.model_name == "google-bert/bert-base-uncased"
    assert settings.device is Device.CPU


def test_seed_variable_names_are_kept() -> None:
    for name in ("MODEL_NAME", "MAX_SEQUENCE_LENGTH", "BATCH_SIZE", "ONNX_EXECUTION_PROVIDER"):
        assert name in ENV_VARS


def test_values_are_converted_from_strings() -> None:
    settings = load_settings(
        {
            "MAX_SEQUENCE_LENGTH": "256",
            "BATCH_SIZE": "8",
            "ONNX_EXECUTION_PROVIDER": "cuda",
            "PORT": "9000",
            "MAX_BATCH_TOKENS": "4096",
            "MAX_QUEUE_WAIT_MS": "2500",
        }
    )
    assert settings.max_sequence_length == 256
    assert settings.batch_size == 8
    assert settings.device is Device.CUDA
    assert settings.engine_config().max_sequence_length == 256
    assert settings.engine_config().budget == BatchBudget(8, 4096)
    assert settings.batcher_config().max_queue_wait_ms == 2500
    assert settings.port == 9000


def test_the_batch_budget_defaults_to_the_devices_own() -> None:
    assert load_settings({}).engine_config().budget == BatchBudget(32, 1024, min_fill=0.8)


def test_a_retired_setting_stops_start_up_naming_its_replacement() -> None:
    with pytest.raises(
        SettingsError, match="CPU_SLICE_TOKENS is no longer read: set MAX_BATCH_TOKENS"
    ):
        load_settings({"CPU_SLICE_TOKENS": "0"})


def test_unrelated_variables_are_ignored() -> None:
    assert load_settings({"PATH": "/bin", "HOME": "/root"}) == Settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BATCH_SIZE", "zero"),
        ("BATCH_SIZE", "0"),
        ("MAX_SEQUENCE_LENGTH", "1024"),
        ("ONNX_EXECUTION_PROVIDER", "TPU"),
        ("PORT", "70000"),
        ("MAX_QUEUE_WAIT_MS", "0"),
        ("MAX_BATCH_TOKENS", "1"),
        ("LOG_LEVEL", "loud"),
        ("SERVED_MODEL_NAME", "bad name/with slash"),
        ("CUDA_ARENA_EXTEND_STRATEGY", "whenever"),
        ("CUDA_MEMORY_LIMIT_BYTES", "4096"),
        ("CUDA_USE_TF32", "maybe"),
        ("CUDA_ATTENTION_KERNELS", "flash,xformers"),
        ("CUDA_GRAPHS", "sometimes"),
    ],
)
def test_bad_value_error_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"invalid setting: {name}: "):
        load_settings({name: value})


def test_api_key_can_come_from_a_mounted_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "api-key"
    secret.write_text("s3cret-key\n")
    assert load_settings({"API_KEY_FILE": str(secret)}).api_key == "s3cret-key"


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (None, {}, "cannot read"),
        ("", {}, "is empty"),
        ("key", {"API_KEY": "other"}, "not both"),
    ],
)
def test_a_bad_api_key_file_is_named(
    tmp_path: Path, content: str | None, extra: dict[str, str], message: str
) -> None:
    secret = tmp_path / "api-key"
    if content is not None:
        secret.write_text(content)
    with pytest.raises(SettingsError, match=f"API_KEY_FILE.*{message}|{message}.*API_KEY_FILE"):
        load_settings({"API_KEY_FILE": str(secret), **extra})


def test_cuda_provider_options_come_from_the_environment() -> None:
    settings = load_settings(
        {
            "ONNX_EXECUTION_PROVIDER": "CUDA",
            "CUDA_ARENA_EXTEND_STRATEGY": "Same_As_Requested",
            "CUDA_MEMORY_LIMIT_BYTES": str(40 << 30),
            "CUDA_USE_TF32": "true",
            "CUDA_ATTENTION_KERNELS": "cudnn_flash, TRT_FUSED",
            "CUDA_GRAPHS": "1",
            "CUDA_SKIP_LAYER_NORM_STRICT": "true",
        }
    )
    assert settings.engine_config().cuda == CudaOptions(
        arena_extend_strategy=ArenaExtendStrategy.SAME_AS_REQUESTED,
        memory_limit_bytes=40 << 30,
        use_tf32=True,
        attention_kernels=frozenset({AttentionKernel.CUDNN_FLASH, AttentionKernel.TRT_FUSED}),
        graphs=True,
        skip_layer_norm_strict=True,
    )
    assert load_settings({}).engine_config().cuda == CudaOptions()


def test_cuda_batches_default_to_the_gpus_own_budget() -> None:
    budget = load_settings({"ONNX_EXECUTION_PROVIDER": "CUDA"}).engine_config().budget
    assert budget == BatchBudget(256, 32768)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CUDA_GRAPHS": "true"}, "CUDA_GRAPHS needs ONNX_EXECUTION_PROVIDER cuda"),
        ({"CUDA_PACKING": "true"}, "CUDA_PACKING needs ONNX_EXECUTION_PROVIDER CUDA"),
        (
            {"ONNX_EXECUTION_PROVIDER": "CUDA", "CUDA_PACKING": "1", "CUDA_GRAPHS": "1"},
            "CUDA_GRAPHS cannot run a packed model \\(CUDA_PACKING\\)",
        ),
        ({"CUDA_ATTENTION_KERNELS": "fast"}, "CUDA_ATTENTION_KERNELS: unknown kernel fast"),
    ],
)
def test_cuda_settings_that_cannot_work_stop_start_up(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ)


def test_onnx_runtime_threads_and_workers_follow_the_usable_cpus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings({"INTRA_OP_THREADS": "3"}).engine_config().intra_op_threads == 3
    # 0 (the default) leaves the count to the runtime: ONNX Runtime's, or the CPU budget.
    assert load_settings({}).engine_config().intra_op_threads is None
    # A pod limited to 4 CPUs on a 32-CPU node: 3 workers (one CPU left to the engine), not 8.
    monkeypatch.setattr(settings_module, "cpu_budget", lambda: CpuBudget(32, 4.0, 16))
    assert load_settings({}).worker_count == 3
    monkeypatch.setattr(settings_module, "cpu_budget", lambda: CpuBudget(32, None, 16))
    assert load_settings({}).worker_count == 8
    assert load_settings({"WORKERS": "3"}).worker_count == 3
    with pytest.raises(SettingsError, match="INTRA_OP_THREADS"):
        load_settings({"INTRA_OP_THREADS": "-1"})
