"""ModernBERT: its own encoder (modernbert_graph.py: pre-norm, rotary positions, GeGLU, windowed
layers), no token types, layers and heads saved without biases, and one prediction head in front
of both its decoder and its classifier.
"""

from __future__ import annotations

from typing import Any

from bert_runtime.preparation.families.family import Encoder, Family


def _as_bert_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """Its norms' epsilon is `norm_eps` (transformers' default 1e-5)."""
    return {**raw, "layer_norm_eps": raw.get("norm_eps", 1e-5)}


MODERNBERT = Family(
    model_type="modernbert",
    architectures=(
        "ModernBertModel",
        "ModernBertForMaskedLM",
        "ModernBertForSequenceClassification",
    ),
    encoder=Encoder.MODERNBERT,
    as_bert_config=_as_bert_fields,
    token_types=False,
    masked_lm_head="head.dense",
    prediction_head_norm="head.norm",
    decoder="decoder.weight",
    decoder_bias="decoder.bias",
    optional_biases=True,
    masked_lm_architecture_only=True,
    weight_prefixes={"model.": "bert."},
)
