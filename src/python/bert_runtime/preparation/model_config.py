"""A BERT-family checkpoint's config.json, as the typed settings that shape its graph.

It refuses, with the file named, what the graph builders cannot reproduce exactly. The weights are
read apart (weights.py), and so are ModernBERT's settings beyond BERT's (modernbert_config.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from bert_runtime.errors import ModelSourceError, UnsupportedModelError
from bert_runtime.files import read_json
from bert_runtime.preparation.families.family import Encoder, Family, FirstTokenClassifier
from bert_runtime.preparation.families.registry import FAMILIES
from bert_runtime.preparation.modernbert_config import ModernBertSettings, read_modernbert_settings
from bert_runtime.preparation.relative_position import BUCKETS as RELATIVE_BUCKETS


class Head(StrEnum):
    """Task heads a prepared model can serve besides embeddings."""

    FILL_MASK = "fill-mask"
    CLASSIFICATION = "classification"


PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")


@dataclass(frozen=True)
class BertConfig:
    """
    The subset of Hugging Face's BertConfig shaping the graph (RobertaConfig and MPNetConfig have
    the same fields, DistilBertConfig other names for them).
    """

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
    model_type: str = "bert"
    # Rows of the position table before the first token's: RoBERTa counts positions from its
    # padding index + 1 (2 in roberta-base), BERT from 0.
    position_offset: int = 0
    # Buckets of MPNet's relative position bias (0: none, as in BERT).
    relative_attention_buckets: int = 0
    # Width of the embeddings (ELECTRA's may be narrower than hidden_size); 0: hidden_size.
    embedding_size: int = 0
    # ModernBERT's own settings (None for every other family).
    modernbert: ModernBertSettings | None = None

    @property
    def max_positions(self) -> int:
        """The longest input the position table allows (roberta-base: 514 rows, 512 tokens)."""
        return self.max_position_embeddings - self.position_offset

    @property
    def padding_idx(self) -> int | None:
        """
        The pad token id of families whose positions count past it (RoBERTa, XLM-R, MPNet): the
        graph numbers their positions from the token ids as transformers does (positions.py).
        """
        return self.position_offset - 1 if self.position_offset else None

    @property
    def embedding_width(self) -> int:
        return self.embedding_size or self.hidden_size

    @property
    def family(self) -> Family:
        """What sets this model's architecture apart from BERT (families/)."""
        return FAMILIES[self.model_type]

    @property
    def first_token_classifier(self) -> FirstTokenClassifier | None:
        """The classification head, unless it is BERT's (on the pooler)."""
        return self.family.classifier

    @property
    def masked_lm_head(self) -> str:
        """The first layer of the masked-LM head (ModernBERT's classifiers have one named alike)."""
        return self.family.masked_lm_head

    @property
    def classifier_output(self) -> str:
        """The classification head's last layer."""
        head = self.first_token_classifier
        return head.output if head else "classifier"

    @property
    def head_activation(self) -> str:
        """The prediction head's activation: gelu, or ModernBERT's own setting."""
        return self.modernbert.head_activation if self.modernbert else "gelu"


def read_config(path: Path) -> BertConfig:
    """Parse config.json, refusing what the graph builder cannot reproduce exactly."""
    raw: dict[str, Any] = dict(read_json(path))
    model_type = raw.get("model_type")
    family = FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        raise UnsupportedModelError(
            f"{path}: model_type {model_type!r} is not supported "
            f"(supported: {', '.join(repr(t) for t in FAMILIES)})"
        )
    raw = family.as_bert_config(raw)
    supported = family.architectures
    architectures = raw.get("architectures") or [supported[0]]
    architecture = next((a for a in architectures if a in supported), None)
    if architecture is None:
        raise UnsupportedModelError(
            f"{path}: architectures {architectures} are not supported "
            f"(supported for {model_type}: {', '.join(sorted(supported))})"
        )
    if raw.get("hidden_act", "gelu") != "gelu":
        key = family.config_name("hidden_act")
        raise UnsupportedModelError(f"{path}: {key} {raw['hidden_act']!r} is not supported")
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
    try:
        config = BertConfig(
            architecture=architecture,
            vocab_size=int(raw["vocab_size"]),
            hidden_size=int(raw["hidden_size"]),
            num_hidden_layers=int(raw["num_hidden_layers"]),
            num_attention_heads=int(raw["num_attention_heads"]),
            intermediate_size=int(raw["intermediate_size"]),
            max_position_embeddings=int(raw["max_position_embeddings"]),
            # DistilBERT and MPNet have no token types (the graph gives them a table of zeros).
            type_vocab_size=int(raw.get("type_vocab_size", 2)) if family.token_types else 0,
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
            id2label={int(k): str(v) for k, v in (raw.get("id2label") or {}).items()},
            problem_type=raw.get("problem_type"),
            model_type=family.model_type,
            position_offset=_position_offset(raw, path) if family.positions_past_padding else 0,
            relative_attention_buckets=_relative_buckets(raw, path)
            if family.relative_attention
            else 0,
            embedding_size=int(raw.get("embedding_size") or 0),
            modernbert=(
                read_modernbert_settings(raw, path)
                if family.encoder is Encoder.MODERNBERT
                else None
            ),
        )
    except KeyError as error:
        raise ModelSourceError(f"{path} has no {error.args[0]!r}") from error
    except (TypeError, ValueError, AttributeError) as error:
        raise ModelSourceError(f"{path} has a value of the wrong type: {error}") from error
    if config.hidden_size % config.num_attention_heads:
        raise UnsupportedModelError(
            f"{path}: hidden_size {config.hidden_size} is not divisible by "
            f"num_attention_heads {config.num_attention_heads}"
        )
    return config


def _relative_buckets(raw: dict[str, object], path: Path) -> int:
    """
    transformers' MPNet computes 32 buckets whatever the config says; a table of another size
    would be read differently there, so it is refused.
    """
    buckets = raw.get("relative_attention_num_buckets", RELATIVE_BUCKETS)
    if buckets != RELATIVE_BUCKETS:
        raise UnsupportedModelError(
            f"{path}: relative_attention_num_buckets {buckets!r} is not supported "
            f"(supported: {RELATIVE_BUCKETS})"
        )
    return RELATIVE_BUCKETS


def _position_offset(raw: dict[str, object], path: Path) -> int:
    """RoBERTa's first token sits at position pad_token_id + 1, as transformers numbers them."""
    pad_token_id = raw.get("pad_token_id", 1)
    if not isinstance(pad_token_id, int) or isinstance(pad_token_id, bool) or pad_token_id < 0:
        raise UnsupportedModelError(f"{path}: pad_token_id {pad_token_id!r} is not a token id")
    return pad_token_id + 1
