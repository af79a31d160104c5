"""The supported families by model_type, and the weight names they all rename.

The one list of what the preparation code supports: read_config refuses a model_type not here, and
weights.py reads every checkpoint's tensors through the union of the families' renamings (a
checkpoint's names say its family before its config.json is consulted; no two families' names
collide).
"""

from __future__ import annotations

from collections.abc import Mapping

from bert_runtime.preparation.families.bert import BERT
from bert_runtime.preparation.families.distilbert import DISTILBERT
from bert_runtime.preparation.families.electra import ELECTRA
from bert_runtime.preparation.families.family import Family
from bert_runtime.preparation.families.modernbert import MODERNBERT
from bert_runtime.preparation.families.mpnet import MPNET
from bert_runtime.preparation.families.roberta import ROBERTA, XLM_ROBERTA

FAMILIES: Mapping[str, Family] = {
    family.model_type: family
    for family in (BERT, ROBERTA, XLM_ROBERTA, MPNET, ELECTRA, DISTILBERT, MODERNBERT)
}


def _union(tables: list[Mapping[str, str]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for table in tables:
        for name, bert_name in table.items():
            if merged.setdefault(name, bert_name) != bert_name:
                raise ValueError(f"two families rename {name!r} differently")
    return merged


# Every family's weight names under BERT's: prefixes, and the parts of their layers.
WEIGHT_PREFIXES = _union([family.weight_prefixes for family in FAMILIES.values()])
LAYER_PREFIXES = tuple(dict.fromkeys(f.layer_prefix for f in FAMILIES.values() if f.layer_prefix))
LAYER_PARTS = _union([family.layer_parts for family in FAMILIES.values()])
