"""ELECTRA: BERT whose embeddings may be narrower than its layers (then projected), without
pooler, with a generator's masked-LM head and a classification head of its own.
"""

from __future__ import annotations

from bert_runtime.preparation.families.family import OUT_PROJ, Family, FirstTokenClassifier
from bert_runtime.preparation.vocabulary_tokenizers import WORDPIECE

ELECTRA = Family(
    model_type="electra",
    architectures=(
        "ElectraModel",
        # The discriminator checkpoints (google/electra-*-discriminator): served as embeddings.
        "ElectraForPreTraining",
        "ElectraForMaskedLM",
        "ElectraForSequenceClassification",
    ),
    classifier=FirstTokenClassifier("classifier.dense", "gelu", OUT_PROJ),
    weight_prefixes={
        "generator_predictions.dense.": "cls.predictions.transform.dense.",
        "generator_predictions.LayerNorm.": "cls.predictions.transform.LayerNorm.",
        "generator_lm_head.weight": "cls.predictions.decoder.weight",
        "generator_lm_head.bias": "cls.predictions.bias",
        "electra.": "bert.",
    },
    vocabulary=WORDPIECE,
)
