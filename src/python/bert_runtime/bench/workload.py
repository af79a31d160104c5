"""What the benchmarks feed the engine and how they compare its answers, in one place."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bert_runtime.config import Pooling
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.task_inputs import Work
from bert_runtime.serving.tasks import EmbedRequest

CLS, SEP = 2, 3
# Mean pooling without normalization: the vectors carry the model's own scale into the comparisons.
REQUEST = EmbedRequest(pooling=Pooling.MEAN, normalize=False)


def random_sequences(
    rng: np.random.Generator, lengths: Sequence[int], vocab: int
) -> list[np.ndarray]:
    """Token-id sequences of the given lengths, framed by [CLS] ... [SEP] like real inputs."""
    out = []
    for length in lengths:
        ids = rng.integers(100, vocab, size=length, dtype=np.int32)
        ids[0], ids[-1] = CLS, SEP
        out.append(ids)
    return out


def full_length_inputs(ids: np.ndarray) -> dict[str, np.ndarray]:
    """Graph inputs for a (rows, length) id matrix with no padding: every position attended."""
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": 0 * ids}


def embed_mean(engine: Engine, sequences: list[np.ndarray]) -> np.ndarray:
    """One engine batch of mean-pooled embeddings, stacked as (rows, hidden)."""
    results = engine.run(sequences, [REQUEST] * len(sequences))
    return np.stack([r.vector for r in results])


def embed_planned(engine: Engine, sequences: list[np.ndarray]) -> np.ndarray:
    """Mean-pooled embeddings of any number of sequences, run as the planner's batches."""
    results = engine.run_work(Work(sequences, [REQUEST] * len(sequences)))
    return np.stack([r.vector for r in results])


def cosine_min(a: np.ndarray, b: np.ndarray) -> float:
    """The worst row-wise cosine similarity between two (rows, hidden) arrays."""
    dots = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(dots.min())
