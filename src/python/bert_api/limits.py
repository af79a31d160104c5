"""Per-request limits (texts per request, characters per text), named in the protocol's terms.

The body size limit is Litestar's (MAX_BODY_BYTES); these bound the work one well-formed request
may ask for. Each protocol adapter names the offending field its own way (`inputs[3]`,
`instances[0].text_pair`), so the checks take the names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bert_api.errors import ApiError


@dataclass(frozen=True)
class RequestLimits:
    max_items: int
    max_chars: int

    def count(self, count: int, field: str) -> None:
        if not count:
            raise ApiError(422, f"{field} is empty: send at least one text")
        if count > self.max_items:
            raise ApiError(
                422, f"{field} has {count} items, more than the limit of {self.max_items}"
            )

    def length(self, text: str, where: str) -> None:
        if len(text) > self.max_chars:
            raise ApiError(
                422, f"{where} has {len(text)} characters, more than the limit of {self.max_chars}"
            )

    def texts(self, inputs: str | Sequence[str], field: str = "inputs") -> list[str]:
        """One text or a list, as a list within the limits."""
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        self.count(len(texts), field)
        if max(map(len, texts)) > self.max_chars:  # one pass in C; the loop only to name the text
            for index, text in enumerate(texts):
                self.length(text, f"{field}[{index}]")
        return texts

    def pairs(
        self,
        pairs: Sequence[tuple[str, str]],
        field: str = "pairs",
        where: Callable[[int, int], str] = lambda index, side: f"pairs[{index}][{side}]",
    ) -> list[tuple[str, str]]:
        """
        Sentence pairs within the limits of the texts: one item per pair, each text checked (and
        named in errors by `where(pair index, 0 or 1)`).
        """
        self.count(len(pairs), field)
        for index, pair in enumerate(pairs):
            for side, text in enumerate(pair):
                self.length(text, where(index, side))
        return list(pairs)
