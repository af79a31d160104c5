"""The texts every server is sent, and the request bodies made of them.

Issue 30's workload: texts of 5-120 tokens, mean about 39, counted with all-MiniLM-L6-v2's tokenizer
([CLS] and [SEP] included, as the model sees them). Lengths are drawn from a gamma distribution
(shape 1.6, scale 22, shifted by 5 and cut at 120: mean ~39, most texts short, a long tail), and
the words are whole words of the tokenizer's own vocabulary, so each word is one token and a text's
length is exact. `random.Random` with a fixed seed: the same texts on every machine and Python 3.x.
The bert-base-sized model uses the same tokenizer, so the texts are the same tokens there too.
"""

from __future__ import annotations

import json
import random
import statistics
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

MIN_TOKENS, MAX_TOKENS = 5, 120
GAMMA_SHAPE, GAMMA_SCALE = 1.6, 22.0


@dataclass(frozen=True)
class TokenStats:
    count: int
    min: int
    mean: float
    max: int

    def __str__(self) -> str:
        return (
            f"{self.count} texts, {self.min}-{self.max} tokens (mean {self.mean:.1f}, "
            "[CLS] and [SEP] included)"
        )


def _words(tokenizer: Tokenizer) -> list[str]:
    """Whole lowercase words of the vocabulary (no ## pieces, no [unused]), sorted."""
    vocabulary = tokenizer.get_vocab()
    return sorted(
        w for w in vocabulary if len(w) >= 3 and w.isascii() and w.isalpha() and w.islower()
    )


def make_texts(tokenizer_json: Path, count: int, seed: int) -> list[str]:
    """`count` texts of exactly their drawn token counts: capitalized, with a full stop."""
    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    words = _words(tokenizer)
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        tokens = round(MIN_TOKENS + rng.gammavariate(GAMMA_SHAPE, GAMMA_SCALE))
        tokens = min(max(tokens, MIN_TOKENS), MAX_TOKENS)
        # [CLS] + words + "." + [SEP]
        chosen = [rng.choice(words) for _ in range(tokens - 3)]
        texts.append(" ".join(chosen).capitalize() + ".")
    return texts


def token_stats(tokenizer_json: Path, texts: list[str]) -> TokenStats:
    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    # all-MiniLM-L6-v2's tokenizer.json pads and truncates to 128: count the texts' own tokens.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    lengths = [len(found.ids) for found in tokenizer.encode_batch(texts)]
    return TokenStats(len(lengths), min(lengths), statistics.fmean(lengths), max(lengths))


def write_bodies(texts: list[str], per_request: int, model: str, path: Path) -> Path:
    """OpenAI embeddings bodies, one JSON document a line, `per_request` consecutive texts each."""
    with path.open("w") as out:
        for start in range(0, len(texts) - per_request + 1, per_request):
            chunk = texts[start : start + per_request]
            body = {"model": model, "input": chunk[0] if per_request == 1 else chunk}
            out.write(json.dumps(body, separators=(",", ":")) + "\n")
    return path
