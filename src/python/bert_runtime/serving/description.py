"""What clients and operators want to know about a served model and where it runs."""

from __future__ import annotations

from dataclasses import dataclass

from bert_runtime.config import Device, Pooling
from bert_runtime.serving.engine import Engine


@dataclass(frozen=True)
class ModelDescription:
    source: str
    revision: str | None
    architecture: str
    precision: str
    tasks: list[str]
    # What fill-mask texts must contain ("[MASK]", RoBERTa's "<mask>"); None without fill-mask.
    mask_token: str | None
    labels: list[str]
    pooling: Pooling
    normalize: bool
    prompts: dict[str, str]
    default_prompt_name: str | None
    hidden_size: int
    embedding_size: int
    max_sequence_length: int
    truncation: str
    execution_provider: str
    device: Device
    device_name: str | None
    gpu_memory_total_bytes: int | None
    gpu_memory_used_bytes: int | None
    max_batch_size: int


def describe(engine: Engine) -> ModelDescription:
    """The engine's model, device (GPU memory as of now) and batch size."""
    manifest = engine.manifest
    capabilities = engine.capabilities
    device = engine.device_info
    return ModelDescription(
        source=manifest.source,
        revision=manifest.revision,
        architecture=manifest.architecture,
        precision=manifest.precision.value,
        tasks=capabilities.tasks,
        mask_token=engine.tokenizer.mask_token if capabilities.fill_mask else None,
        labels=list(manifest.id2label.values()),
        pooling=manifest.pooling,
        normalize=manifest.normalize,
        prompts=manifest.prompts,
        default_prompt_name=manifest.default_prompt_name,
        hidden_size=manifest.hidden_size,
        embedding_size=manifest.embedding_size,
        max_sequence_length=engine.max_length,
        truncation=engine.tokenizer.truncation.value,
        execution_provider=device.provider,
        device=device.device,
        device_name=device.name,
        gpu_memory_total_bytes=device.memory_total_bytes,
        gpu_memory_used_bytes=device.memory_used_bytes,
        max_batch_size=engine.planner.budget.max_rows,
    )
