"""RoBERTa and XLM-R (the same network): BERT with positions counted past the padding index, one
token type, a masked-LM head named `lm_head` and a classification head of its own.
"""

from __future__ import annotations

from bert_runtime.preparation.families.family import OUT_PROJ, Family, FirstTokenClassifier
from bert_runtime.preparation.vocabulary_tokenizers import ROBERTA_BPE

# RoBERTa's masked-LM head under BERT's names (the same layers: dense, gelu, norm, decoder); MPNet
# names its head the same way.
LM_HEAD_NAMES = {
    "lm_head.dense.": "cls.predictions.transform.dense.",
    "lm_head.layer_norm.": "cls.predictions.transform.LayerNorm.",
    "lm_head.decoder.weight": "cls.predictions.decoder.weight",
    # The output bias is saved as lm_head.bias, lm_head.decoder.bias or both (tied, equal).
    "lm_head.decoder.bias": "cls.predictions.bias",
    "lm_head.bias": "cls.predictions.bias",
}
# RoBERTa's, XLM-R's and MPNet's classification head: dense + tanh on the first token, out_proj.
TANH_CLASSIFIER = FirstTokenClassifier("classifier.dense", "tanh", OUT_PROJ)

ROBERTA = Family(
    model_type="roberta",
    architectures=("RobertaModel", "RobertaForMaskedLM", "RobertaForSequenceClassification"),
    positions_past_padding=True,
    classifier=TANH_CLASSIFIER,
    weight_prefixes={**LM_HEAD_NAMES, "roberta.": "bert."},
    vocabulary=ROBERTA_BPE,
)
# XLM-R's sentencepiece.bpe.model would need the sentencepiece library to read: it has no
# vocabulary format, so it needs tokenizer.json.
XLM_ROBERTA = Family(
    model_type="xlm-roberta",
    architectures=(
        "XLMRobertaModel",
        "XLMRobertaForMaskedLM",
        "XLMRobertaForSequenceClassification",
    ),
    positions_past_padding=True,
    classifier=TANH_CLASSIFIER,
    weight_prefixes={**LM_HEAD_NAMES, "roberta.": "bert."},
)
