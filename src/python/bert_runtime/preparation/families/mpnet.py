"""MPNet: RoBERTa without token types, with a relative position bias in attention and its own
names for the attention's parts.
"""

from __future__ import annotations

from bert_runtime.preparation.families.family import Family
from bert_runtime.preparation.families.roberta import LM_HEAD_NAMES, TANH_CLASSIFIER
from bert_runtime.preparation.vocabulary_tokenizers import MPNET_WORDPIECE

MPNET = Family(
    model_type="mpnet",
    architectures=("MPNetModel", "MPNetForMaskedLM", "MPNetForSequenceClassification"),
    positions_past_padding=True,
    token_types=False,
    relative_attention=True,
    classifier=TANH_CLASSIFIER,
    weight_prefixes={**LM_HEAD_NAMES, "mpnet.": "bert."},
    layer_prefix="mpnet.",
    # MPNet's `attention.attn.q` is BERT's `attention.self.query`: the same sublayers.
    layer_parts={
        "attention.attn.q.": "attention.self.query.",
        "attention.attn.k.": "attention.self.key.",
        "attention.attn.v.": "attention.self.value.",
        "attention.attn.o.": "attention.output.dense.",
        "attention.LayerNorm.": "attention.output.LayerNorm.",
    },
    vocabulary=MPNET_WORDPIECE,
)
