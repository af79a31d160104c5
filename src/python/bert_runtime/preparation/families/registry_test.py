from __future__ import annotations

from itertools import permutations

from bert_runtime.preparation.families.registry import FAMILIES, LAYER_PARTS, WEIGHT_PREFIXES


def test_no_renamed_prefix_starts_another() -> None:
    # weights.py takes the first prefix that matches: with none starting another, the order in
    # which the families' names were united cannot change a name.
    for tables in (WEIGHT_PREFIXES, LAYER_PARTS):
        assert not [(a, b) for a, b in permutations(tables, 2) if b.startswith(a)]


def test_each_family_is_registered_under_its_model_type() -> None:
    for model_type, family in FAMILIES.items():
        assert family.model_type == model_type
        # The architecture a config.json naming none is read as: the bare encoder.
        assert family.architectures[0].endswith("Model")
