"""Task requests and results (plain dataclasses and numpy), and the post-processing of model
outputs.

Each text is one work item: a token-id sequence plus its task request. Items whose requests are of
the same type can share a batch; each item's own parameters (pooling, top_k) are applied to its
rows afterwards. A request's type names its result's type (`TaskRequest[Embedding]`), so a batch
of requests comes back as a list of that result, typed, without narrowing at each caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from bert_runtime.config import Pooling
from bert_runtime.errors import InputError

# fill-mask candidates per mask token: the most a request may ask for.
MAX_TOP_K = 100


@dataclass(frozen=True)
class Embedding:
    vector: np.ndarray
    num_tokens: int


@dataclass(frozen=True)
class MaskCandidate:
    token_id: int
    token: str
    score: float


@dataclass(frozen=True)
class FillMaskResult:
    # One list of candidates (best first) per [MASK] token, in text order.
    masks: list[list[MaskCandidate]]
    num_tokens: int


@dataclass(frozen=True)
class Classification:
    """
    The best label and every label's score: softmax, or sigmoid for single-logit (reranker) and
    multi-label models, raw values for regression (as transformers' pipeline reports them), and
    the raw logits (empty for a model prepared before they were an output).
    """

    label: str
    score: float
    scores: dict[str, float]
    num_tokens: int
    logits: dict[str, float] = field(default_factory=dict)


Result = TypeVar("Result", bound="Embedding | FillMaskResult | Classification", covariant=True)


class TaskRequest(Generic[Result]):
    """What to do with one sequence; its type parameter is the result's type."""


@dataclass(frozen=True)
class EmbedRequest(TaskRequest[Embedding]):
    """None takes the model's own default (its manifest's `pooling` / `normalize`)."""

    pooling: Pooling | None = None
    normalize: bool | None = None


@dataclass(frozen=True)
class FillMaskRequest(TaskRequest[FillMaskResult]):
    top_k: int = 5

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise InputError(f"top_k must be from 1 to {MAX_TOP_K}, got {self.top_k}")


@dataclass(frozen=True)
class ClassifyRequest(TaskRequest[Classification]):
    # For a sentence pair (TextTokenizer.encode_pairs): the token position where the second text
    # starts, so its tokens get token_type_id 1. 0 for a single text.
    second_text_start: int = 0


AnyRequest = EmbedRequest | FillMaskRequest | ClassifyRequest
AnyResult = Embedding | FillMaskResult | Classification


def pooled(
    cls_rows: np.ndarray,
    mean_rows: np.ndarray,
    use_cls: Sequence[bool],
    normalize: Sequence[bool],
) -> np.ndarray:
    """
    Each row's pooled vector (its CLS or mean row, as asked), L2-normalized where asked: a few
    numpy calls for the whole batch, not several per text. A row's result depends on that row
    alone, so a text gets the same vector whatever its batch-mates.
    """
    rows = np.where(np.asarray(use_cls)[:, None], cls_rows, mean_rows).astype(
        np.float32, copy=False
    )
    if not any(normalize):
        return rows
    normalized = l2_normalized_rows(rows)
    if all(normalize):
        return normalized
    return np.where(np.asarray(normalize)[:, None], normalized, rows)


def l2_normalized_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row at unit length (a zero row stays zero)."""
    norms: np.ndarray = np.linalg.norm(matrix, axis=1, keepdims=True)
    normalized: np.ndarray = matrix / np.maximum(norms, 1e-12)
    return normalized


def classification(
    scores: np.ndarray, logits: np.ndarray | None, id2label: dict[int, str], num_tokens: int
) -> Classification:
    labels = [id2label.get(i, f"LABEL_{i}") for i in range(len(scores))]
    best = int(np.argmax(scores))
    return Classification(
        label=labels[best],
        score=float(scores[best]),
        scores={label: float(p) for label, p in zip(labels, scores, strict=True)},
        num_tokens=num_tokens,
        logits={} if logits is None else dict(zip(labels, map(float, logits), strict=True)),
    )
