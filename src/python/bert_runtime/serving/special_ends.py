"""Special tokens around one text ([CLS] text [SEP], <s> text </s>) added here, not by tokenizers.

tokenizers' post-processor builds a second Encoding for every text to put them there: ids, type
ids, token strings, offsets and masks copied into a new one. For one text that only puts fixed
ids before and after the text's own, and costs 2.4 us of the 13-15 us a short text takes to
encode (tokenizers 0.23.3; all-MiniLM-L6-v2's and the tiny test model's tokenizers, batches of
32; docs/BENCHMARKS.md). So single texts are encoded by a copy of the tokenizer without its
post-processor, truncated to the limit less those ids as tokenizers itself does, and the ids are
added when the text's array is made. Pairs keep the post-processor: it places the second text and
its type ids. special_ends_test.py checks every fixture family against the full tokenizer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Encoding, Tokenizer

# Post-processors that put fixed ids around a single text and change nothing else a model reads.
_FIXED_ENDS = {"TemplateProcessing", "BertProcessing", "RobertaProcessing"}
# Texts the ends are read from (each one token or more): they must be the same around each.
_PROBES = ("a", "hello world, again")


@dataclass(frozen=True)
class SpecialEnds:
    """The ids before and after a single text, and the tokenizer that leaves them out."""

    before: tuple[int, ...]
    after: tuple[int, ...]
    tokenizer: Tokenizer

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> SpecialEnds | None:
        """
        For `tokenizer` as configured (its truncation included); None when its post-processor is
        not one that only adds fixed ids, or when its limit leaves no room for the text.
        """
        saved = tokenizer.to_str()
        processor = json.loads(saved).get("post_processor") or {}
        if processor.get("type") not in _FIXED_ENDS:
            return None
        whole = Tokenizer.from_str(saved)
        whole.no_truncation()
        bare = Tokenizer.from_str(saved)
        bare.no_truncation()
        bare.post_processor = None
        splits = {_split(whole.encode(text).ids, bare.encode(text).ids) for text in _PROBES}
        found = splits.pop() if len(splits) == 1 else None
        if found is None:
            return None
        before, after = found
        truncation = tokenizer.truncation
        if truncation is not None:
            room = truncation["max_length"] - len(before) - len(after)
            if room < 1:
                return None
            bare.enable_truncation(
                room,
                stride=truncation["stride"],
                strategy=truncation["strategy"],
                direction=truncation["direction"],
            )
        return cls(before, after, bare)

    def arrays(self, encodings: Sequence[Encoding]) -> list[np.ndarray]:
        """Each encoding's ids with the ends around them, as int32 arrays."""
        before, after = self.before, self.after
        return [np.array([*before, *e.ids, *after], dtype=np.int32) for e in encodings]


def _split(whole: list[int], inner: list[int]) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """
    The ids before and after `inner` in `whole`, or None if `whole` is not that shape or `inner`
    is empty (a vocabulary that drops the probe's characters: nothing places the text's ids).
    """
    if not inner:
        return None
    for start in range(len(whole) - len(inner) + 1):
        if whole[start : start + len(inner)] == inner:
            return tuple(whole[:start]), tuple(whole[start + len(inner) :])
    return None
