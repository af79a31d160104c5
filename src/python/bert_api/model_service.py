"""The served model: prepared and loaded in the background, then fed through the batcher.

Loading runs off the event loop, so the server answers liveness from the first second and readiness
only once the model is loaded and warmed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path

import numpy as np

from bert_api.metrics import ServiceMetrics
from bert_api.settings import Settings
from bert_runtime import loading
from bert_runtime.config import Precision, Truncation
from bert_runtime.errors import InputError, ShuttingDown
from bert_runtime.serving.batcher import Batcher, BatchStats
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.session import DeviceInfo
from bert_runtime.serving.tasks import EmbedRequest, TaskRequest, TaskResult

logger = logging.getLogger(__name__)


class Status(StrEnum):
    LOADING = "loading"
    READY = "ready"
    DRAINING = "draining"
    FAILED = "failed"


def prepared_dir(settings: Settings) -> Path:
    """The prepared model directory for the settings, preparing it on first use."""
    return loading.prepared_dir(
        settings.model_name,
        cache_dir=settings.model_cache_dir,
        device=settings.device,
        precision=Precision(settings.precision) if settings.precision else None,
    )


class ModelService:
    """Owns the Engine and the Batcher and knows whether they can serve."""

    def __init__(
        self,
        settings: Settings,
        metrics: ServiceMetrics,
        on_load_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.status = Status.LOADING
        self.error: str | None = None
        self.engine: Engine | None = None
        self._batcher: Batcher | None = None
        self._on_load_failure = on_load_failure
        self._task: asyncio.Task[None] | None = None
        metrics.queue_capacity.set(settings.max_queue_size)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._load(), name="model-load")

    async def _load(self) -> None:
        started = time.monotonic()
        try:
            model_dir = await asyncio.to_thread(prepared_dir, self.settings)
            engine = await asyncio.to_thread(Engine, model_dir, self.settings.engine_config())
        except Exception as error:  # - any failure means the model cannot serve
            self.status = Status.FAILED
            self.error = str(error)
            logger.error("model %s failed to load: %s", self.settings.model_name, error)
            if self._on_load_failure is not None:
                self._on_load_failure(error)
            return
        self.engine = engine
        self._batcher = Batcher(
            engine,
            self.settings.batcher_config(),
            max_positions=engine.manifest.max_sequence_length,
            on_batch=self._record_batch,
            on_stop=self._batcher_stopped,
        )
        self._batcher.start()
        self.metrics.model_load_seconds.set(time.monotonic() - started)
        if self.status is Status.LOADING:
            self.status = Status.READY
            self.metrics.model_ready.set(1)
            logger.info(
                "model ready in %.1fs on %s", time.monotonic() - started, engine.device_info
            )

    @property
    def device_info(self) -> DeviceInfo | None:
        return self.engine.device_info if self.engine is not None else None

    @property
    def queue_depth(self) -> int:
        return self._batcher.queue_depth if self._batcher is not None else 0

    def _record_batch(self, stats: BatchStats) -> None:
        self.metrics.batch_size.observe(stats.size)
        self.metrics.queue_wait.observe(stats.max_queue_wait_s)
        self.metrics.inference_time.observe(stats.run_s)
        self.metrics.tokens.inc(stats.real_tokens)
        if stats.real_tokens:
            self.metrics.padding_ratio.observe(stats.padded_tokens / stats.real_tokens)
        self.metrics.queue_depth.set(self.queue_depth)

    def _batcher_stopped(self, error: BaseException) -> None:
        """The batcher can no longer serve: say so on every health route, so the pod is replaced."""
        self.status = Status.FAILED
        self.error = f"the batcher stopped: {error!r}"
        self.metrics.model_ready.set(0)

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        engine = self._ready_engine()
        return engine.tokenizer.encode(texts)

    async def run(
        self,
        texts: Sequence[str],
        request: TaskRequest,
        truncation: Truncation | None = None,
        prompt_name: str | None = None,
    ) -> list[TaskResult]:
        """
        Tokenize (`truncation`: the request's own, else the server's), check and batch `texts`
        for one task; results in input order. Texts to embed get the model's prompt named, or its
        default one, in front (`Engine.prompted`).
        """
        engine = self._ready_engine()
        if isinstance(request, EmbedRequest):
            texts = engine.prompted(texts, prompt_name)
        sequences = engine.tokenizer.encode(texts, truncation)
        return await self._submit(engine, sequences, [request] * len(sequences), "input")

    async def run_pairs(
        self, pairs: Sequence[tuple[str, str]], truncation: Truncation | None = None
    ) -> list[TaskResult]:
        """Classify sentence pairs through the batcher; results in input order."""
        engine = self._ready_engine()
        sequences, requests = engine.pair_inputs(pairs, truncation)
        return await self._submit(engine, sequences, requests, "pair")

    async def _submit(
        self,
        engine: Engine,
        sequences: Sequence[np.ndarray],
        requests: Sequence[TaskRequest],
        item_name: str,
    ) -> list[TaskResult]:
        for index, (sequence, request) in enumerate(zip(sequences, requests, strict=True)):
            try:
                engine.check_request(request, sequence)
            except InputError as error:
                raise InputError(f"{item_name} {index}: {error}") from error
        assert self._batcher is not None
        self.metrics.queue_depth.set(self.queue_depth + len(sequences))
        return await self._batcher.submit_many(sequences, requests)

    def _ready_engine(self) -> Engine:
        if self.status is not Status.READY or self.engine is None:
            raise ShuttingDown(f"the model is not ready ({self.status.value})")
        return self.engine

    async def close(self) -> None:
        """Refuse new work and finish what is queued."""
        self.status = Status.DRAINING if self.status is Status.READY else self.status
        self.metrics.model_ready.set(0)
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._batcher is not None:
            await self._batcher.close()
