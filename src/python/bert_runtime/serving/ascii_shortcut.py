"""ASCII texts past the BERT normalizer: the same token ids, in about half the time.

tokenizers' BertNormalizer (clean control characters, space out CJK, strip accents, lowercase)
keeps an alignment for every character, so on a short English text it costs about as much as the
rest of encoding (all-MiniLM-L6-v2's tokenizer, tokenizers 0.23.3: 22.9 us a text in batches of
32, 12.8 without it; docs/BENCHMARKS.md). On ASCII it is a map of each character on its own: the
controls other than tab, newline and return removed, those three made spaces, A-Z lowered where
it lowercases; accents and CJK do not occur (ascii_shortcut_test.py checks all 128 characters
under every setting). Such texts are mapped here with one `str.translate` and encoded by a copy of
the tokenizer without its normalizer.

Added tokens ([MASK], words a user added) are found in the text before it is normalized, some in
the text as given, so a text that holds one (in any case) takes the full path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from tokenizers import Tokenizer

_TAB_NEWLINE_RETURN = (9, 10, 13)


class AsciiShortcut:
    """The BertNormalizer of one tokenizer, for ASCII texts without added tokens."""

    def __init__(self, clean_text: bool, lowercase: bool, added: Sequence[str]) -> None:
        table: dict[int, str | None] = {}
        for code in range(128):
            if clean_text and (code < 32 or code == 127):
                table[code] = " " if code in _TAB_NEWLINE_RETURN else None
            elif lowercase and "A" <= chr(code) <= "Z":
                table[code] = chr(code).lower()
        self._table = table
        self._added = [token.lower() for token in added if token]

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> AsciiShortcut | None:
        """The shortcut for `tokenizer`, or None when its normalizer is not BertNormalizer."""
        settings = json.loads(tokenizer.to_str())
        normalizer = settings.get("normalizer") or {}
        if normalizer.get("type") != "BertNormalizer":
            return None
        added = [str(token.get("content", "")) for token in settings.get("added_tokens") or []]
        return cls(bool(normalizer.get("clean_text")), bool(normalizer.get("lowercase")), added)

    @staticmethod
    def bypassing(tokenizer: Tokenizer) -> Tokenizer:
        """A copy of `tokenizer` without its normalizer (truncation and all else as they are)."""
        copy = Tokenizer.from_str(tokenizer.to_str())
        copy.normalizer = None
        return copy

    def normalized(self, texts: Sequence[str]) -> list[str] | None:
        """`texts` as the normalizer would leave them, or None if one must take the full path."""
        mapped = []
        for text in texts:
            if not text.isascii():
                return None
            as_normalized = text.translate(self._table)
            if self._added:
                seen = (text.lower(), as_normalized.lower())
                if any(token in found for token in self._added for found in seen):
                    return None
            mapped.append(as_normalized)
        return mapped
