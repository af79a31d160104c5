"""The manifest of a prepared model directory: where the two wings of the library meet.

Preparation writes it; serving reads it and needs nothing else to know what the model is, so a
directory prepared on one machine serves on another.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bert_runtime.config import Device, Pooling, Precision
from bert_runtime.errors import ModelSourceError

MANIFEST_NAME = "manifest.json"
MODEL_NAME = "model.onnx"
# The fast tokenizer and the settings naming its special tokens (Hugging Face's file names, the
# same in a source checkpoint and in a prepared directory).
TOKENIZER_NAME = "tokenizer.json"
TOKENIZER_CONFIG_NAME = "tokenizer_config.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """What a prepared directory holds and how it was made."""

    source: str
    revision: str | None
    architecture: str
    device: Device
    precision: Precision
    opset: int
    builder_version: str
    # The longest input the model takes: its position embeddings, or the model's own limit when
    # shorter (sentence-transformers' max_seq_length, else the tokenizer's model_max_length).
    max_sequence_length: int
    hidden_size: int
    # The embeddings' width: hidden_size, or a sentence-transformers model's last Dense output.
    embedding_size: int
    vocab_size: int
    heads: list[str]
    id2label: dict[int, str]
    inputs: list[str]
    outputs: list[str]
    # sha256 of the source files that went in, and of the files written out.
    input_sha256: dict[str, str]
    output_sha256: dict[str, str]
    # Counts of fused operators (EmbedLayerNormalization, Attention, ...): proof the optimizer did
    # its job.
    fused_ops: dict[str, int]
    cache_key: str
    format_version: int = FORMAT_VERSION
    extra: dict[str, str] = field(default_factory=dict)
    # What an embedding request naming neither gets: a sentence-transformers model's own pooling
    # and normalization (modules.json), else mean pooling, normalized.
    pooling: Pooling = Pooling.MEAN
    normalize: bool = True
    # A sentence-transformers model's named prompts (config_sentence_transformers.json), put in
    # front of texts to embed, and the one used when a request names none.
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    # What prepare measured of a low-precision model against its fp32 form (int8: min and mean
    # embedding cosine, alone vs batched, over its built-in texts); empty for fp32 and fp16.
    accuracy: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        raw = json.loads(text)
        if raw.get("format_version") != FORMAT_VERSION:
            raise ModelSourceError(
                f"manifest format {raw.get('format_version')} is not {FORMAT_VERSION}: "
                "prepare the model again"
            )
        raw["device"] = Device(raw["device"])
        raw["precision"] = Precision(raw["precision"])
        if "pooling" in raw:  # manifests written before it was recorded have the default
            raw["pooling"] = Pooling(raw["pooling"])
        raw["id2label"] = {int(k): v for k, v in raw["id2label"].items()}
        raw.setdefault("embedding_size", raw["hidden_size"])  # written before Dense layers
        return cls(**raw)


def read_manifest(model_dir: Path) -> Manifest:
    """Read and check a prepared directory's manifest."""
    path = model_dir / MANIFEST_NAME
    if not path.is_file():
        raise ModelSourceError(
            f"{model_dir} is not a prepared model directory (no {MANIFEST_NAME})"
        )
    try:
        return Manifest.from_json(path.read_text(encoding="utf-8"))
    except (KeyError, TypeError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise ModelSourceError(
            f"{path} is not a manifest this version can read ({type(error).__name__}: {error}): "
            "prepare the model again"
        ) from error
