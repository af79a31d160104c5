"""DistilBERT: BERT without token types or pooler, with its own names for the config's fields,
the layers' parts and the masked-LM head, and a classification head of its own.
"""

from __future__ import annotations

from typing import Any

from bert_runtime.preparation.families.family import Family, FirstTokenClassifier
from bert_runtime.preparation.vocabulary_tokenizers import WORDPIECE

# DistilBERT's config.json names for BertConfig's fields (transformers maps them the same way).
_FIELDS = {
    "hidden_size": "dim",
    "num_hidden_layers": "n_layers",
    "num_attention_heads": "n_heads",
    "intermediate_size": "hidden_dim",
    "hidden_act": "activation",
}


def _as_bert_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """
    DistilBERT's config under BertConfig's names; its layer norms' epsilon is fixed at 1e-12
    in transformers, whatever the file says.
    """
    renamed = {bert: raw[own] for bert, own in _FIELDS.items() if own in raw}
    return {**raw, **renamed, "layer_norm_eps": 1e-12}


DISTILBERT = Family(
    model_type="distilbert",
    architectures=(
        "DistilBertModel",
        "DistilBertForMaskedLM",
        "DistilBertForSequenceClassification",
    ),
    as_bert_config=_as_bert_fields,
    config_names=_FIELDS,
    token_types=False,
    # Its classifier keeps its names (pre_classifier, classifier): the head differs from BERT's.
    classifier=FirstTokenClassifier("pre_classifier", "relu", "classifier"),
    weight_prefixes={
        "vocab_transform.": "cls.predictions.transform.dense.",
        "vocab_layer_norm.": "cls.predictions.transform.LayerNorm.",
        "vocab_projector.weight": "cls.predictions.decoder.weight",
        "vocab_projector.bias": "cls.predictions.bias",
        "distilbert.": "bert.",
    },
    layer_prefix="distilbert.",
    # `transformer.layer.N.ffn.lin1` is BERT's `encoder.layer.N.intermediate.dense`.
    layer_parts={
        "attention.q_lin.": "attention.self.query.",
        "attention.k_lin.": "attention.self.key.",
        "attention.v_lin.": "attention.self.value.",
        "attention.out_lin.": "attention.output.dense.",
        "sa_layer_norm.": "attention.output.LayerNorm.",
        "ffn.lin1.": "intermediate.dense.",
        "ffn.lin2.": "output.dense.",
        "output_layer_norm.": "output.LayerNorm.",
    },
    vocabulary=WORDPIECE,
)
