"""The typed, per-task service the HTTP routes call: one method per task, typed results.

Each call builds its work (prompting, tokenization, checks: TaskInputs), hands the token ids to
the batch queue and shapes what comes back. Building the work is CPU time the event loop must not
spend on a large request (one request near the body limit takes seconds to tokenize, and health
checks would wait behind it), so requests over `inline_chars` characters are prepared on a worker
thread (the tokenizer releases the GIL); smaller ones are prepared inline, where a thread hop
would cost more than the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from bert_runtime.config import Truncation
from bert_runtime.serving.description import ModelDescription
from bert_runtime.serving.task_inputs import EmbedOptions, TaskInputs, TokenizedText, Work
from bert_runtime.serving.tasks import (
    AnyResult,
    Classification,
    FillMaskResult,
    TaskRequest,
    l2_normalized_rows,
)

R = TypeVar("R", bound=AnyResult)
T = TypeVar("T")
# Requests up to this many characters are tokenized on the event loop (about 0.1 ms of work).
INLINE_CHARS = 4096


class BatchQueue(Protocol):
    """Where token ids go to be run: the Batcher, or a client of one in another process."""

    async def submit_many(
        self,
        sequences: Sequence[np.ndarray],
        requests: Sequence[TaskRequest[R]],
        deadline: float | None = None,
    ) -> list[R]:
        ...


@dataclass(frozen=True)
class Embeddings:
    """One vector per text ([texts, width] float32) and the tokens the texts took."""

    vectors: np.ndarray
    tokens: int


@dataclass(frozen=True)
class Classifications:
    results: list[Classification]
    tokens: int


@dataclass(frozen=True)
class MaskFills:
    results: list[FillMaskResult]
    tokens: int


@dataclass(frozen=True)
class RankedText:
    index: int
    score: float


@dataclass(frozen=True)
class Ranking:
    """Texts best first (a stable order for ties), and the tokens the pairs took."""

    ranked: list[RankedText]
    tokens: int


class InferenceService:
    """The model's tasks, for one served model."""

    def __init__(
        self,
        inputs: TaskInputs,
        queue: BatchQueue,
        describe: Callable[[], ModelDescription],
        *,
        inline_chars: int = INLINE_CHARS,
        prepare_pool: Executor | None = None,
    ) -> None:
        self._inputs = inputs
        self._queue = queue
        self._describe = describe
        self._inline_chars = inline_chars
        self._pool = prepare_pool or ThreadPoolExecutor(2, thread_name_prefix="bert-prepare")

    def describe(self) -> ModelDescription:
        return self._describe()

    async def embed(
        self,
        texts: Sequence[str],
        options: EmbedOptions | None = None,
        deadline: float | None = None,
    ) -> Embeddings:
        options = options or EmbedOptions()
        work = await self._prepare(self._inputs.embed, _chars(texts), texts, options)
        results = await self._run(work, deadline)
        vectors = np.stack([result.vector for result in results])
        if options.dimensions is not None and options.dimensions < vectors.shape[1]:
            vectors = vectors[:, : options.dimensions]
            normalize = self._inputs.manifest.normalize
            if options.normalize if options.normalize is not None else normalize:
                vectors = l2_normalized_rows(vectors)
        return Embeddings(vectors, work.tokens)

    async def fill_mask(
        self, texts: Sequence[str], top_k: int = 5, deadline: float | None = None
    ) -> MaskFills:
        work = await self._prepare(self._inputs.fill_mask, _chars(texts), texts, top_k)
        return MaskFills(await self._run(work, deadline), work.tokens)

    async def classify(
        self,
        texts: Sequence[str],
        truncation: Truncation | None = None,
        deadline: float | None = None,
    ) -> Classifications:
        work = await self._prepare(self._inputs.classify, _chars(texts), texts, truncation)
        return Classifications(await self._run(work, deadline), work.tokens)

    async def classify_pairs(
        self,
        pairs: Sequence[tuple[str, str]],
        truncation: Truncation | None = None,
        deadline: float | None = None,
    ) -> Classifications:
        size = sum(len(a) + len(b) for a, b in pairs)
        work = await self._prepare(self._inputs.classify_pairs, size, pairs, truncation)
        return Classifications(await self._run(work, deadline), work.tokens)

    async def rerank(
        self,
        query: str,
        texts: Sequence[str],
        truncation: Truncation | None = None,
        raw_scores: bool = False,
        deadline: float | None = None,
    ) -> Ranking:
        """Texts scored against `query` by a cross-encoder: the sigmoid, or the logit itself."""
        size = _chars(texts) + len(query) * len(texts)
        work = await self._prepare(self._inputs.rerank, size, query, texts, truncation)
        results = await self._run(work, deadline)
        scores = [next(iter(r.logits.values())) if raw_scores else r.score for r in results]
        ranked = sorted(
            (RankedText(index, score) for index, score in enumerate(scores)),
            key=lambda row: -row.score,
        )
        return Ranking(ranked, work.tokens)

    async def tokenize(self, texts: Sequence[str]) -> list[TokenizedText]:
        return await self._prepare(self._inputs.tokenize, _chars(texts), texts)

    async def _prepare(self, build: Callable[..., T], chars: int, *args: object) -> T:
        if chars <= self._inline_chars:
            return build(*args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, build, *args)

    async def _run(self, work: Work[R], deadline: float | None) -> list[R]:
        return await self._queue.submit_many(work.sequences, work.requests, deadline)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _chars(texts: Sequence[str]) -> int:
    return sum(map(len, texts))
