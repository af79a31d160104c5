"""What sets one BERT-family architecture apart from BERT, stated as data.

Every difference the preparation code acts on (which architectures it takes, how its config.json
and weights are named, how positions and token types work, its classification and masked-LM heads,
its vocabulary files, which encoder builds it) is a field of `Family`, filled in once per family in
this package's modules (bert.py, roberta.py, ...) and looked up by model_type in registry.py, so
the code that reads a checkpoint or builds a graph asks the family instead of testing names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bert_runtime.preparation.vocabulary_tokenizers import VocabularyFormat


class Encoder(StrEnum):
    """Which graph builds the encoder: BERT's (bert_encoder.py) or ModernBERT's."""

    BERT = "bert"
    MODERNBERT = "modernbert"


@dataclass(frozen=True)
class FirstTokenClassifier:
    """A classification head on the first token's vector: hidden layer, activation, last layer."""

    hidden: str
    activation: str  # "tanh", "gelu" or "relu"
    output: str


# The last layer of RoBERTa's, MPNet's and ELECTRA's classification heads.
OUT_PROJ = "classifier.out_proj"


def _unchanged(raw: dict[str, Any]) -> dict[str, Any]:
    return raw


@dataclass(frozen=True)
class Family:
    """One model_type's differences from BERT (whose values are the defaults)."""

    model_type: str
    # The architectures (config.json's `architectures`) it serves; the first when none is named.
    architectures: tuple[str, ...]
    encoder: Encoder = Encoder.BERT
    # config.json under BertConfig's field names (DistilBERT's differ), and the names it has.
    as_bert_config: Callable[[dict[str, Any]], dict[str, Any]] = _unchanged
    config_names: Mapping[str, str] = field(default_factory=dict)
    # Positions counted from the padding index + 1, as RoBERTa's are (positions.py).
    positions_past_padding: bool = False
    token_types: bool = True
    # MPNet's relative position bias in attention (relative_position.py).
    relative_attention: bool = False
    # The classification head, unless it is BERT's single layer on the pooler.
    classifier: FirstTokenClassifier | None = None
    # The masked-LM head: its first layer, its norm, its decoder and the decoder's bias.
    masked_lm_head: str = "cls.predictions.transform.dense"
    prediction_head_norm: str = "cls.predictions.transform.LayerNorm"
    decoder: str = "cls.predictions.decoder.weight"
    decoder_bias: str = "cls.predictions.bias"
    # Its linear layers and norms may be saved without biases (ModernBERT's).
    optional_biases: bool = False
    # The masked-LM head's first layer is also the classifier's (ModernBERT): only a ForMaskedLM
    # checkpoint has a fill-mask head.
    masked_lm_architecture_only: bool = False
    # Its weights' names, by prefix, under BERT's (weights.py), and its layers' own part names
    # under BERT's, in layers named `<layer_prefix>encoder.layer.N.` or `...transformer.layer.N.`.
    weight_prefixes: Mapping[str, str] = field(default_factory=dict)
    layer_prefix: str = ""
    layer_parts: Mapping[str, str] = field(default_factory=dict)
    # The older vocabulary files its tokenizer can be built from without tokenizer.json (None:
    # tokenizer.json is needed).
    vocabulary: VocabularyFormat | None = None

    def config_name(self, name: str) -> str:
        """The name config.json gives BertConfig's field `name` in this family."""
        return self.config_names.get(name, name)
