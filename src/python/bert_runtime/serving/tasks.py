"""Task requests and results (plain dataclasses and numpy), and the post-processing of model
outputs.

Each text is one work item: a token-id sequence plus its task request. Items with the same task type
can share a batch; each item's own parameters (pooling, top_k) are applied to its rows afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bert_runtime.config import Pooling


@dataclass(frozen=True)
class EmbedRequest:
    """None takes the model's own default (its manifest's `pooling` / `normalize`)."""

    pooling: Pooling | None = None
    normalize: bool | None = None


@dataclass(frozen=True)
class FillMaskRequest:
    top_k: int = 5


@dataclass(frozen=True)
class ClassifyRequest:
    # For a sentence pair (TextTokenizer.encode_pairs): the token position where the second text
    # starts, so its tokens get token_type_id 1. 0 for a single text.
    second_text_start: int = 0


TaskRequest = EmbedRequest | FillMaskRequest | ClassifyRequest


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


TaskResult = Embedding | FillMaskResult | Classification


def pool(
    cls_row: np.ndarray, mean_row: np.ndarray, pooling: Pooling, normalize: bool
) -> np.ndarray:
    """Pick the pooled vector asked for, L2-normalized when asked."""
    vector = (cls_row if pooling is Pooling.CLS else mean_row).astype(np.float32)
    return l2_normalized(vector) if normalize else vector


def l2_normalized(vector: np.ndarray) -> np.ndarray:
    """`vector` at unit length (a zero vector stays zero)."""
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


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
