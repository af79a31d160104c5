"""Bodies of the health, readiness and metadata routes (msgspec Structs, shown in OpenAPI)."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from bert_runtime.serving.description import ModelDescription


class HealthBody(msgspec.Struct, omit_defaults=True):
    status: str
    model: str
    # Why the model failed (or what it is doing), when there is something to say.
    error: str | None = None


class LiveBody(msgspec.Struct, omit_defaults=True):
    live: bool
    error: str | None = None


class ReadyBody(msgspec.Struct):
    ready: bool


class ModelReadyBody(msgspec.Struct):
    name: str
    ready: bool


class ModelInfo(msgspec.Struct, kw_only=True):
    """
    The model's status and, once it is loaded, what it is and where it runs (fields not there
    while it loads are left out; null means known to be none).
    """

    status: str
    source: str | UnsetType = UNSET
    revision: str | None | UnsetType = UNSET
    architecture: str | UnsetType = UNSET
    precision: str | UnsetType = UNSET
    tasks: list[str] | UnsetType = UNSET
    # What fill-mask texts must contain ("[MASK]", RoBERTa's "<mask>"); null without fill-mask.
    mask_token: str | None | UnsetType = UNSET
    labels: list[str] | UnsetType = UNSET
    pooling: str | UnsetType = UNSET
    normalize: bool | UnsetType = UNSET
    prompts: dict[str, str] | UnsetType = UNSET
    default_prompt_name: str | None | UnsetType = UNSET
    hidden_size: int | UnsetType = UNSET
    embedding_size: int | UnsetType = UNSET
    max_sequence_length: int | UnsetType = UNSET
    truncation: str | UnsetType = UNSET
    execution_provider: str | UnsetType = UNSET
    device: str | UnsetType = UNSET
    device_name: str | None | UnsetType = UNSET
    gpu_memory_total_bytes: int | None | UnsetType = UNSET
    gpu_memory_used_bytes: int | None | UnsetType = UNSET
    max_batch_size: int | UnsetType = UNSET


def model_info(status: str, described: ModelDescription | None) -> ModelInfo:
    if described is None:
        return ModelInfo(status=status)
    return ModelInfo(
        status=status,
        source=described.source,
        revision=described.revision,
        architecture=described.architecture,
        precision=described.precision,
        tasks=described.tasks,
        mask_token=described.mask_token,
        labels=described.labels,
        pooling=described.pooling.value,
        normalize=described.normalize,
        prompts=described.prompts,
        default_prompt_name=described.default_prompt_name,
        hidden_size=described.hidden_size,
        embedding_size=described.embedding_size,
        max_sequence_length=described.max_sequence_length,
        truncation=described.truncation,
        execution_provider=described.execution_provider,
        device=described.device.value,
        device_name=described.device_name,
        gpu_memory_total_bytes=described.gpu_memory_total_bytes,
        gpu_memory_used_bytes=described.gpu_memory_used_bytes,
        max_batch_size=described.max_batch_size,
    )


class V1ModelBody(msgspec.Struct):
    name: str
    ready: bool
    model: ModelInfo


class TensorSpec(msgspec.Struct):
    name: str
    datatype: str
    shape: list[int]


class V2ModelBody(msgspec.Struct, kw_only=True):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    parameters: ModelInfo
