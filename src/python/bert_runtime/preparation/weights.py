"""A checkpoint's safetensors weights as float32 numpy arrays, found under BERT's names.

One graph builder serves BERT and its relatives because their weights are read here under BERT's
names (each family states its own names in families/, registry.py unites them); the sizes
config.json states are checked against them before a graph is built, and the task heads a
checkpoint can serve are read off which weights it has.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

from bert_runtime.errors import MissingTensorsError, ModelSourceError
from bert_runtime.preparation.families.registry import LAYER_PARTS, LAYER_PREFIXES, WEIGHT_PREFIXES
from bert_runtime.preparation.model_config import BertConfig, Head


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """A safetensors file's tensors; a truncated or foreign file is named in a ModelSourceError."""
    try:
        return load_file(str(path))
    except SafetensorError as error:
        raise ModelSourceError(f"{path} is not a readable safetensors file: {error}") from error


class Weights:
    """Named tensors of a checkpoint, found under either naming convention.

    Checkpoints name the encoder `bert.<name>` (task models) or `<name>` (BertModel), and older ones
    (such as bert-base-uncased itself) call LayerNorm parameters gamma/beta instead of weight/bias.
    RoBERTa's, MPNet's and DistilBERT's names are read as BERT's (`roberta.` is `bert.`, its
    `lm_head` is `cls.predictions`; MPNet's `attention.attn.q` is `attention.self.query`;
    DistilBERT's `transformer.layer.N.ffn.lin1` is `encoder.layer.N.intermediate.dense`; each
    family's module in families/ states its names), so one graph builder serves them all.
    """

    def __init__(self, tensors: Mapping[str, np.ndarray], source: str = "the weights") -> None:
        self._tensors = {_bert_name(_modern_name(k)): v for k, v in tensors.items()}
        # The file the tensors came from, for error messages.
        self.source = source

    @classmethod
    def load(cls, path: Path) -> Weights:
        return cls(read_safetensors(path), str(path))

    def has(self, name: str) -> bool:
        return self._find(name) is not None

    def get(self, name: str) -> np.ndarray:
        found = self._find(name)
        if found is None:
            raise MissingTensorsError(self.source, [name])
        return np.ascontiguousarray(found, dtype=np.float32)

    def check_shapes(self, config: BertConfig) -> None:
        """
        The tensors that fix the model's sizes must have the sizes config.json states: otherwise
        the manifest would misstate the model's width, or ONNX Runtime would fail deep inside.
        Extra layers are allowed (transformers, too, loads only the first num_hidden_layers).
        """
        expected = _sized_tensors(config)
        found = {name: self._find(name) for name in expected}
        missing = [name for name, tensor in found.items() if tensor is None]
        if missing:
            raise MissingTensorsError(self.source, missing)
        for name, (shape, meaning) in expected.items():
            tensor = found[name]
            if tensor is not None and tensor.shape != shape:
                raise ModelSourceError(
                    f"{self.source}: tensor {name} is {list(tensor.shape)}, but config.json says "
                    f"{list(shape)} ({meaning})"
                )

    def _find(self, name: str) -> np.ndarray | None:
        for candidate in _candidates(name):
            if candidate in self._tensors:
                return self._tensors[candidate]
        return None

    def heads(self, config: BertConfig) -> list[Head]:
        """Task heads whose weights are present."""
        found = []
        masked_lm = not config.family.masked_lm_architecture_only or config.architecture.endswith(
            "ForMaskedLM"
        )
        if masked_lm and self.has(f"{config.masked_lm_head}.weight"):
            found.append(Head.FILL_MASK)
        if config.architecture.endswith("ForSequenceClassification") and self.has(
            f"{config.classifier_output}.weight"
        ):
            found.append(Head.CLASSIFICATION)
        return found


def _sized_tensors(config: BertConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    """The tensors that fix a model's sizes: their expected shapes, and what states those."""
    hidden, inner = config.hidden_size, config.intermediate_size
    expected: dict[str, tuple[tuple[int, ...], str]]
    if config.modernbert:
        expected = {
            "embeddings.tok_embeddings.weight": (
                (config.vocab_size, hidden),
                "vocab_size x hidden_size",
            )
        }
        for layer in range(config.num_hidden_layers):
            expected[f"layers.{layer}.attn.Wqkv.weight"] = (
                (3 * hidden, hidden),
                "3 hidden_size x hidden_size",
            )
            # GeGLU: one projection holds the input and the gate.
            expected[f"layers.{layer}.mlp.Wi.weight"] = (
                (2 * inner, hidden),
                "2 intermediate_size x hidden_size",
            )
        return expected
    width = "embedding_size" if config.embedding_size else "hidden_size"
    expected = {
        "embeddings.word_embeddings.weight": (
            (config.vocab_size, config.embedding_width),
            f"vocab_size x {width}",
        )
    }
    for layer in range(config.num_hidden_layers):
        p = f"encoder.layer.{layer}"
        expected[f"{p}.attention.self.query.weight"] = (
            (hidden, hidden),
            "hidden_size x hidden_size",
        )
        expected[f"{p}.intermediate.dense.weight"] = (
            (inner, hidden),
            "intermediate_size x hidden_size",
        )
    return expected


def _modern_name(name: str) -> str:
    if name.endswith(".gamma"):
        return name[: -len(".gamma")] + ".weight"
    if name.endswith(".beta"):
        return name[: -len(".beta")] + ".bias"
    return name


# A layer of a family that names its layers' parts its own way (MPNet, DistilBERT): the same
# sublayers in the same order, renamed by LAYER_PARTS.
_OTHER_LAYER = re.compile(
    rf"(?:{'|'.join(re.escape(prefix) for prefix in LAYER_PREFIXES)})?"
    r"(?:encoder|transformer)\.layer\.(\d+)\.(.+)"
)


def _bert_name(name: str) -> str:
    layer = _OTHER_LAYER.fullmatch(name)
    if layer:
        index, part = layer.groups()
        return f"bert.encoder.layer.{index}.{_renamed(part, LAYER_PARTS)}"
    return _renamed(name, WEIGHT_PREFIXES)


def _renamed(name: str, prefixes: Mapping[str, str]) -> str:
    for prefix, bert_prefix in prefixes.items():
        if name.startswith(prefix):
            return bert_prefix + name[len(prefix) :]
    return name


def _candidates(name: str) -> tuple[str, ...]:
    # Encoder tensors may carry the `bert.` prefix; head tensors (cls.*, classifier.*) never do.
    if name.startswith(("cls.", "classifier.", "pre_classifier.")):
        return (name,)
    return (f"bert.{name}", name)
