"""
What load looks like: routes, request kinds (single text, batch, long text) and weighted mixes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

ROUTES = {
    "v1": "/v1/models/{model}:predict",
    "embed": "/embed",
    "openai": "/v1/embeddings",
    "v2": "/v2/models/{model}/infer",
}
KINDS = ("single", "batch", "long")
DEFAULT_MIX = "single=6,batch=3,long=1"
BATCH_SIZE = 8
_WORDS = (
    "the model reads every word of a sentence and turns it into a vector that search ranking "
    "clustering and classification can use across many languages and domains"
).split()


def sample_texts(kind: str, rng: random.Random) -> list[str]:
    """Texts for one request of `kind`: 1 short text, a batch of short texts, or 1 long text."""
    if kind == "single":
        return [" ".join(rng.choices(_WORDS, k=rng.randint(5, 20)))]
    if kind == "batch":
        return [" ".join(rng.choices(_WORDS, k=rng.randint(5, 20))) for _ in range(BATCH_SIZE)]
    if kind == "long":
        return [" ".join(rng.choices(_WORDS, k=rng.randint(250, 400)))]
    raise ValueError(f"unknown request kind {kind!r} (use {', '.join(KINDS)})")


def request_for(route: str, texts: list[str], model: str) -> tuple[str, dict[str, Any]]:
    """(path, JSON body) of one inference request on `route`."""
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r} (use {', '.join(ROUTES)})")
    path = ROUTES[route].format(model=model)
    if route == "v1":
        return path, {"instances": texts}
    if route == "embed":
        return path, {"inputs": texts}
    if route == "openai":
        return path, {"input": texts, "model": model}
    tensor = {"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}
    return path, {"inputs": [tensor]}


@dataclass(frozen=True)
class Mix:
    """Request kinds with integer weights, e.g. single=6,batch=3,long=1."""

    weights: dict[str, int]

    @classmethod
    def parse(cls, text: str) -> Mix:
        weights: dict[str, int] = {}
        for part in text.split(","):
            kind, _, weight = part.partition("=")
            kind = kind.strip()
            if kind not in KINDS:
                raise ValueError(
                    f"unknown request kind {kind!r} in mix {text!r} (use {', '.join(KINDS)})"
                )
            try:
                weights[kind] = int(weight or "1")
            except ValueError as error:
                raise ValueError(f"weight of {kind!r} in mix {text!r} is not an integer") from error
            if weights[kind] < 0:
                raise ValueError(f"weight of {kind!r} must be >= 0")
        if sum(weights.values()) <= 0:
            raise ValueError(f"mix {text!r} has no positive weight")
        return cls(weights)

    def pick(self, rng: random.Random) -> str:
        kinds = list(self.weights)
        return rng.choices(kinds, weights=[self.weights[k] for k in kinds])[0]
