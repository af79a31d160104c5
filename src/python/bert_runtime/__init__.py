"""bert_runtime: BERT-family models prepared as ONNX and served with ONNX Runtime.

No web framework and no Kubernetes here: the HTTP service (bert_api) and other callers build on
this library.
"""

from bert_runtime.config import (
    BatcherConfig,
    Device,
    EngineConfig,
    Pooling,
    Precision,
    TruncationPolicy,
    check_precision_for_device,
)
from bert_runtime.errors import (
    BertRuntimeError,
    ConfigError,
    InputError,
    InputTooLongError,
    MissingModelFilesError,
    ModelSourceError,
    Overloaded,
    ProviderUnavailableError,
    ShuttingDown,
    UnsupportedModelError,
)

__version__ = "0.1.0"

__all__ = [
    "BatcherConfig",
    "BertRuntimeError",
    "ConfigError",
    "Device",
    "EngineConfig",
    "InputError",
    "InputTooLongError",
    "MissingModelFilesError",
    "ModelSourceError",
    "Overloaded",
    "Pooling",
    "Precision",
    "ProviderUnavailableError",
    "ShuttingDown",
    "TruncationPolicy",
    "UnsupportedModelError",
    "check_precision_for_device",
]
