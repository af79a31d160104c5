"""BERT itself: every other family is described by how it differs from this one."""

from __future__ import annotations

from bert_runtime.preparation.families.family import Family
from bert_runtime.preparation.vocabulary_tokenizers import WORDPIECE

BERT = Family(
    model_type="bert",
    architectures=(
        "BertModel",
        "BertForPreTraining",
        "BertForMaskedLM",
        "BertForSequenceClassification",
    ),
    vocabulary=WORDPIECE,
)
