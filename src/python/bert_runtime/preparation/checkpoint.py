"""
Read a BERT-family checkpoint (config.json + safetensors) into typed, framework-free numpy arrays.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from bert_runtime.errors import MissingModelFilesError, UnsupportedModelError

# Architectures whose weights we can turn into a graph, and the task heads each brings.
_ARCHITECTURES = {
    "BertModel",
    "BertForPreTraining",
    "BertForMaskedLM",
    "BertForSequenceClassification",
}


class Head(StrEnum):
    """Task heads a prepared model can serve besides embeddings."""

    FILL_MASK = "fill-mask"
    CLASSIFICATION = "classification"


PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")


@dataclass(frozen=True)
class BertConfig:
    """The subset of Hugging Face's BertConfig that shapes the graph."""

    architecture: str
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    id2label: dict[int, str]
    # Hugging Face's problem_type (regression, single_label_classification,
    # multi_label_classification) or None: with the label count it picks the scores' function.
    problem_type: str | None = None

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads


def read_config(path: Path) -> BertConfig:
    """Parse config.json, refusing what the graph builder cannot reproduce exactly."""
    raw = json.loads(path.read_text())
    if raw.get("model_type") != "bert":
        raise UnsupportedModelError(
            f"{path}: model_type {raw.get('model_type')!r} is not supported (only 'bert')"
        )
    architectures = raw.get("architectures") or ["BertModel"]
    architecture = next((a for a in architectures if a in _ARCHITECTURES), None)
    if architecture is None:
        raise UnsupportedModelError(
            f"{path}: architectures {architectures} are not supported "
            f"(supported: {', '.join(sorted(_ARCHITECTURES))})"
        )
    if raw.get("hidden_act", "gelu") != "gelu":
        raise UnsupportedModelError(f"{path}: hidden_act {raw['hidden_act']!r} is not supported")
    if raw.get("position_embedding_type", "absolute") != "absolute":
        raise UnsupportedModelError(
            f"{path}: position_embedding_type {raw['position_embedding_type']!r} is not supported"
        )
    if raw.get("problem_type") not in PROBLEM_TYPES:
        raise UnsupportedModelError(
            f"{path}: problem_type {raw['problem_type']!r} is not supported "
            f"(supported: {', '.join(sorted(p for p in PROBLEM_TYPES if p))})"
        )
    if raw.get("is_decoder") or raw.get("add_cross_attention"):
        raise UnsupportedModelError(f"{path}: decoder models are not supported")
    config = BertConfig(
        architecture=architecture,
        vocab_size=int(raw["vocab_size"]),
        hidden_size=int(raw["hidden_size"]),
        num_hidden_layers=int(raw["num_hidden_layers"]),
        num_attention_heads=int(raw["num_attention_heads"]),
        intermediate_size=int(raw["intermediate_size"]),
        max_position_embeddings=int(raw["max_position_embeddings"]),
        type_vocab_size=int(raw.get("type_vocab_size", 2)),
        layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
        id2label={int(k): str(v) for k, v in (raw.get("id2label") or {}).items()},
        problem_type=raw.get("problem_type"),
    )
    if config.hidden_size % config.num_attention_heads:
        raise UnsupportedModelError(
            f"{path}: hidden_size {config.hidden_size} is not divisible by "
            f"num_attention_heads {config.num_attention_heads}"
        )
    return config


class Weights:
    """Named tensors of a checkpoint, found under either naming convention.

    Checkpoints name the encoder `bert.<name>` (task models) or `<name>` (BertModel), and older ones
    (such as bert-base-uncased itself) call LayerNorm parameters gamma/beta instead of weight/bias.
    """

    def __init__(self, tensors: Mapping[str, np.ndarray]) -> None:
        self._tensors = {_modern_name(k): v for k, v in tensors.items()}

    @classmethod
    def load(cls, path: Path) -> Weights:
        return cls(load_file(str(path)))

    def has(self, name: str) -> bool:
        return any(candidate in self._tensors for candidate in _candidates(name))

    def get(self, name: str) -> np.ndarray:
        for candidate in _candidates(name):
            if candidate in self._tensors:
                return np.ascontiguousarray(self._tensors[candidate], dtype=np.float32)
        raise MissingModelFilesError("weights", [name])

    def heads(self, config: BertConfig) -> list[Head]:
        """Task heads whose weights are present."""
        found = []
        if self.has("cls.predictions.transform.dense.weight"):
            found.append(Head.FILL_MASK)
        if self.has("classifier.weight") and config.architecture == "BertForSequenceClassification":
            found.append(Head.CLASSIFICATION)
        return found


def _modern_name(name: str) -> str:
    if name.endswith(".gamma"):
        return name[: -len(".gamma")] + ".weight"
    if name.endswith(".beta"):
        return name[: -len(".beta")] + ".bias"
    return name


def _candidates(name: str) -> tuple[str, ...]:
    # Encoder tensors may carry the `bert.` prefix; head tensors (cls.*, classifier.*) never do.
    if name.startswith(("cls.", "classifier.")):
        return (name,)
    return (f"bert.{name}", name)
