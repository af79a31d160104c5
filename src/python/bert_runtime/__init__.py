"""bert_runtime: BERT-family models prepared as ONNX and served with ONNX Runtime.

    from bert_runtime import load_engine
    engine = load_engine("google-bert/bert-base-uncased")  # prepared once into ~/.cache/bert-serve
    vectors = engine.embed(["hello world"])

    # serving many concurrent callers: one batch queue, and the typed per-task service over it
    async with Batcher(engine, BatcherConfig()) as batcher:
        service = InferenceService(engine.inputs, batcher, lambda: describe(engine))
        found = await service.embed(["hello world"])  # Embeddings(vectors, tokens)

    # or in two steps, into a directory of your choosing:
    prepare("google-bert/bert-base-uncased", Path("models/bert"), precision=Precision.INT8)
    engine = Engine(Path("models/bert"))

The engine, batcher and `prepare` load lazily, so importing the package (e.g. for its config types)
does not load ONNX Runtime.

No web framework and no Kubernetes here: the HTTP service (bert_api) and other callers build on
this library.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from bert_runtime.config import (
    BatchBudget,
    BatcherConfig,
    Device,
    EngineConfig,
    Pooling,
    Precision,
    Truncation,
    TruncationPolicy,
    TruncationSide,
    check_precision_for_device,
    default_precision,
)
from bert_runtime.cuda_options import ArenaExtendStrategy, AttentionKernel, CudaOptions
from bert_runtime.errors import (
    BertRuntimeError,
    ConfigError,
    DeadlineExceeded,
    InputError,
    InputTooLongError,
    MissingModelFilesError,
    MissingTensorsError,
    ModelSourceError,
    Overloaded,
    ProviderUnavailableError,
    ShuttingDown,
    UnsupportedModelError,
)

if TYPE_CHECKING:
    from bert_runtime.loading import load_engine, prepared_dir
    from bert_runtime.preparation.prepare import prepare
    from bert_runtime.serving.batcher import Batcher
    from bert_runtime.serving.description import ModelDescription, describe
    from bert_runtime.serving.engine import Engine
    from bert_runtime.serving.service import InferenceService
    from bert_runtime.serving.task_inputs import EmbedOptions
    from bert_runtime.serving.tasks import (
        Classification,
        ClassifyRequest,
        Embedding,
        EmbedRequest,
        FillMaskRequest,
        FillMaskResult,
        MaskCandidate,
    )

__version__ = "0.1.0"

_LAZY = {
    "Engine": "bert_runtime.serving.engine",
    "Batcher": "bert_runtime.serving.batcher",
    "InferenceService": "bert_runtime.serving.service",
    "EmbedOptions": "bert_runtime.serving.task_inputs",
    "ModelDescription": "bert_runtime.serving.description",
    "describe": "bert_runtime.serving.description",
    "EmbedRequest": "bert_runtime.serving.tasks",
    "FillMaskRequest": "bert_runtime.serving.tasks",
    "ClassifyRequest": "bert_runtime.serving.tasks",
    "Embedding": "bert_runtime.serving.tasks",
    "FillMaskResult": "bert_runtime.serving.tasks",
    "MaskCandidate": "bert_runtime.serving.tasks",
    "Classification": "bert_runtime.serving.tasks",
    "prepare": "bert_runtime.preparation.prepare",
    "load_engine": "bert_runtime.loading",
    "prepared_dir": "bert_runtime.loading",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bert_runtime' has no attribute {name!r}")


__all__ = [
    "ArenaExtendStrategy",
    "AttentionKernel",
    "CudaOptions",
    "BatchBudget",
    "Batcher",
    "BatcherConfig",
    "DeadlineExceeded",
    "EmbedOptions",
    "InferenceService",
    "ModelDescription",
    "describe",
    "Classification",
    "ClassifyRequest",
    "EmbedRequest",
    "Embedding",
    "Engine",
    "FillMaskRequest",
    "FillMaskResult",
    "MaskCandidate",
    "prepare",
    "load_engine",
    "prepared_dir",
    "BertRuntimeError",
    "ConfigError",
    "Device",
    "EngineConfig",
    "InputError",
    "InputTooLongError",
    "MissingModelFilesError",
    "MissingTensorsError",
    "ModelSourceError",
    "Overloaded",
    "Pooling",
    "Precision",
    "ProviderUnavailableError",
    "ShuttingDown",
    "Truncation",
    "TruncationPolicy",
    "TruncationSide",
    "UnsupportedModelError",
    "check_precision_for_device",
    "default_precision",
]
