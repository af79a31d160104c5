"""Tokenization with the Hugging Face fast tokenizer: texts and sentence pairs to token ids.

Padding and batching are the BatchPlanner's (planner.py).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer

from bert_runtime.config import Truncation, TruncationPolicy, TruncationSide
from bert_runtime.errors import InputError, InputTooLongError, ModelSourceError
from bert_runtime.files import read_json, read_tokenizer
from bert_runtime.manifest import TOKENIZER_CONFIG_NAME, TOKENIZER_NAME
from bert_runtime.serving.ascii_shortcut import AsciiShortcut
from bert_runtime.serving.special_ends import SpecialEnds


@dataclass(frozen=True)
class _Variant:
    """
    The tokenizers for one (policy, side): `whole` as configured (pairs); `single` for texts, with
    `ends`, the special tokens added here (special_ends.py), where its post-processor allows;
    and the ASCII shortcut with its copy of `single` without the normalizer (None where the
    normalizer is not BertNormalizer).
    """

    whole: Tokenizer
    single: Tokenizer
    ends: SpecialEnds | None
    ascii: tuple[AsciiShortcut, Tokenizer] | None

    def arrays(self, encodings: Sequence[Encoding]) -> list[np.ndarray]:
        """The texts' token ids, special tokens included, as int32 arrays."""
        if self.ends is not None:
            return self.ends.arrays(encodings)
        return [np.asarray(e.ids, dtype=np.int32) for e in encodings]


# Special tokens, by tokenizer_config.json's key, and their names in BERT's and RoBERTa's
# vocabularies for tokenizers that come without that file.
_SPECIAL_TOKENS = {"pad_token": ("[PAD]", "<pad>"), "mask_token": ("[MASK]", "<mask>")}


class TextTokenizer:
    """Texts -> token ids, with an explicit policy for texts over the maximum length."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        max_length: int,
        truncation: TruncationPolicy,
        special_tokens: Mapping[str, str] | None = None,
    ) -> None:
        """`special_tokens`: tokenizer_config.json's names for them (pad_token, mask_token)."""
        self.max_length = max_length
        self.truncation = truncation
        tokenizer.no_padding()
        self._tokenizer = self._configured(tokenizer, truncation, TruncationSide.RIGHT)
        self._shortcut = AsciiShortcut.of(tokenizer)
        # Truncation is a setting of a `tokenizers.Tokenizer`, not an argument of encode, so each
        # (policy, side) a call asks for gets its own copy, made once, and its copy without the
        # normalizer for ASCII texts (ascii_shortcut.py).
        self._variants = {(truncation, TruncationSide.RIGHT): self._variant(self._tokenizer)}
        self._variants_lock = threading.Lock()
        named = special_tokens or {}
        self.pad_id = self._special_token("pad_token", named)[1] or 0
        # The mask token's text ("[MASK]", "<mask>"); both None when the vocabulary has none.
        self.mask_token: str | None
        self.mask_id: int | None
        self.mask_token, self.mask_id = self._special_token("mask_token", named)

    def _special_token(self, key: str, named: Mapping[str, str]) -> tuple[str | None, int | None]:
        """
        The vocabulary's token for `key` and its id: as tokenizer_config.json names it, else by
        custom.
        """
        for token in (named.get(key), *_SPECIAL_TOKENS[key]):
            if token is not None and (found := self._token_id(token)) is not None:
                return token, found
        return None, None

    def _configured(
        self, tokenizer: Tokenizer, policy: TruncationPolicy, side: TruncationSide
    ) -> Tokenizer:
        if policy is TruncationPolicy.TRUNCATE:
            tokenizer.enable_truncation(self.max_length, direction=side.value)
        else:
            tokenizer.no_truncation()
        return tokenizer

    def _variant(self, tokenizer: Tokenizer) -> _Variant:
        ends = SpecialEnds.of(tokenizer)
        single = tokenizer if ends is None else ends.tokenizer
        shortcut = None
        if self._shortcut is not None:
            shortcut = (self._shortcut, AsciiShortcut.bypassing(single))
        return _Variant(tokenizer, single, ends, shortcut)

    def _resolve(self, truncation: Truncation | None) -> tuple[_Variant, TruncationPolicy]:
        """
        The tokenizers that cut as `truncation` says (`_Variant`: pairs, single texts, the ASCII
        shortcut's copy), and the policy they follow.
        """
        if truncation is None:
            return self._variants[(self.truncation, TruncationSide.RIGHT)], self.truncation
        policy = truncation.policy or self.truncation
        # Nothing is cut under REJECT, so the side does not matter.
        side = truncation.side if policy is TruncationPolicy.TRUNCATE else TruncationSide.RIGHT
        with self._variants_lock:
            found = self._variants.get((policy, side))
            if found is None:
                copy = Tokenizer.from_str(self._tokenizer.to_str())
                configured = self._configured(copy, policy, side)
                found = self._variants[(policy, side)] = self._variant(configured)
        return found, policy

    @classmethod
    def from_dir(
        cls, model_dir: Path, max_length: int, truncation: TruncationPolicy
    ) -> TextTokenizer:
        path = model_dir / TOKENIZER_NAME
        if not path.is_file():
            raise ModelSourceError(f"{model_dir} has no {TOKENIZER_NAME}")
        tokenizer = read_tokenizer(path)
        return cls(tokenizer, max_length, truncation, _special_tokens(model_dir))

    def _token_id(self, token: str) -> int | None:
        found = self._tokenizer.token_to_id(token)
        return None if found is None else int(found)

    def encode(
        self, texts: Sequence[str], truncation: Truncation | None = None
    ) -> list[np.ndarray]:
        """
        Token ids (with [CLS]/[SEP]) per text, unpadded; raises InputTooLongError under REJECT.
        `truncation` overrides the tokenizer's policy for this call.
        """
        if not texts:
            raise InputError("no texts to encode")
        variant, policy = self._resolve(truncation)
        tokenizer, inputs = variant.single, list(texts)
        if variant.ascii is not None:
            ascii_texts, bypass = variant.ascii
            normalized = ascii_texts.normalized(inputs)
            if normalized is not None:
                tokenizer, inputs = bypass, normalized
        # encode_batch_fast (tokenizers >= 0.20) skips the character offsets, which serving never
        # reads: 5-9 us less per short text on the host path (docs/BENCHMARKS.md).
        ids = variant.arrays(tokenizer.encode_batch_fast(inputs))
        for index, sequence in enumerate(ids):
            self._check_length(index, sequence, policy)
        return ids

    def _check_length(
        self, index: int, ids: np.ndarray, policy: TruncationPolicy, kind: str = "input"
    ) -> None:
        """Under REJECT, a text over the limit is an error (TRUNCATE has already cut it)."""
        if policy is TruncationPolicy.REJECT and len(ids) > self.max_length:
            raise InputTooLongError(index, len(ids), self.max_length, kind)

    def encode_pairs(
        self, pairs: Sequence[tuple[str, str]], truncation: Truncation | None = None
    ) -> list[tuple[np.ndarray, int]]:
        """
        Token ids of `[CLS] first [SEP] second [SEP]` per pair, with the position where the second
        text starts (0 when it is empty: transformers then encodes the first text alone). Over the
        limit, TRUNCATE cuts the longer text first; REJECT raises InputTooLongError.
        """
        if not pairs:
            raise InputError("no text pairs to encode")
        variant, policy = self._resolve(truncation)
        inputs = [(first, second) if second else first for first, second in pairs]
        encodings = variant.whole.encode_batch_fast(inputs)
        encoded: list[tuple[np.ndarray, int]] = []
        for index, encoding in enumerate(encodings):
            ids = np.asarray(encoding.ids, dtype=np.int32)
            self._check_length(index, ids, policy, "pair")
            type_ids = np.asarray(encoding.type_ids)
            second = int(np.argmax(type_ids)) if type_ids.any() else 0
            encoded.append((ids, second))
        return encoded

    def token_strings(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """The vocabulary's entries ("##ing", RoBERTa's "Ġcat")."""
        return [self._tokenizer.id_to_token(int(i)) or "" for i in ids]

    def token_texts(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """
        Each token decoded alone, as transformers' fill-mask pipeline reports it (its token_str):
        RoBERTa's "Ġcat" is " cat"; BERT's tokens stay as they are ("##ing").
        """
        return [self._tokenizer.decode([int(i)], skip_special_tokens=False) for i in ids]


def _special_tokens(model_dir: Path) -> dict[str, str]:
    """tokenizer_config.json's special tokens (a string, or an object with its "content")."""
    path = model_dir / TOKENIZER_CONFIG_NAME
    if not path.is_file():
        return {}
    settings = read_json(path)
    found: dict[str, str] = {}
    for key in _SPECIAL_TOKENS:
        value = settings.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            found[key] = value
    return found
