"""The served model's lifecycle: prepared and loaded in the background, then served, then drained.

Loading runs off the event loop, so the server answers liveness from the first second and readiness
only once the model is loaded and warmed. Routes get the model's InferenceService from here (through
dependency injection) only while it is ready; otherwise they answer 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from bert_api.heap import freeze_long_lived
from bert_api.hosting import DRAINING_MESSAGE, Status, ready_service
from bert_api.metrics import ServiceMetrics
from bert_api.settings import Settings
from bert_runtime import loading
from bert_runtime.config import Precision
from bert_runtime.errors import ShuttingDown
from bert_runtime.serving.batch_protocol import BatchStats
from bert_runtime.serving.batcher import Batcher
from bert_runtime.serving.description import ModelDescription, describe
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.service import InferenceService

logger = logging.getLogger(__name__)


def prepared_dir(settings: Settings) -> Path:
    """The prepared model directory for the settings, preparing it on first use."""
    return loading.prepared_dir(
        settings.model_name,
        cache_dir=settings.model_cache_dir,
        device=settings.device,
        precision=Precision(settings.precision) if settings.precision else None,
        packing=settings.cuda_packing,
    )


class ModelHost:
    """Owns the Engine, its Batcher and the InferenceService over them, and their status."""

    def __init__(
        self,
        settings: Settings,
        metrics: ServiceMetrics,
        on_load_failure: Callable[[BaseException], None] | None = None,
        *,
        freeze_heap: bool = False,
    ) -> None:
        """
        `freeze_heap`: once loaded, move what the process holds for good out of the cycle
        collector's way (heap.py); for a server process's own host, not a test's, which would
        keep every object alive then from ever being collected.
        """
        self.settings = settings
        self._freeze_heap = freeze_heap
        self.metrics = metrics
        self.status = Status.LOADING
        self.error: str | None = None
        self.engine: Engine | None = None
        self.model_dir: Path | None = None
        self._batcher: Batcher | None = None
        self._service: InferenceService | None = None
        self._on_load_failure = on_load_failure
        self._task: asyncio.Task[None] | None = None
        self._gauges: asyncio.Task[None] | None = None
        # Told of every status change (the engine process tells its workers).
        self.status_listeners: list[Callable[[], None]] = []
        metrics.queue_capacity.set(settings.max_queue_size)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._load(), name="model-load")
        self._gauges = loop.create_task(self._refresh_gauges(), name="queue-gauges")

    def _set_status(self, status: Status, error: str | None = None) -> None:
        self.status = status
        if error is not None:
            self.error = error
        self.metrics.model_ready.set(1 if status is Status.READY else 0)
        for listener in self.status_listeners:
            listener()

    async def _refresh_gauges(self) -> None:
        """The queue's gauges, from their one writer (works with one process or several)."""
        while True:
            self.metrics.queue_depth.set(self._queue_depth())
            self.metrics.expected_wait.set(self._expected_wait())
            await asyncio.sleep(0.25)

    async def _load(self) -> None:
        started = time.monotonic()
        try:
            model_dir = await asyncio.to_thread(prepared_dir, self.settings)
            engine = await asyncio.to_thread(Engine, model_dir, self.settings.engine_config())
        except Exception as error:  # - any failure means the model cannot serve
            self._set_status(Status.FAILED, str(error))
            logger.error("model %s failed to load: %s", self.settings.model_name, error)
            if self._on_load_failure is not None:
                self._on_load_failure(error)
            return
        self.engine = engine
        self.model_dir = model_dir
        self._batcher = Batcher(
            engine,
            self.settings.batcher_config(),
            on_batch=self._record_batch,
            on_drop=self._record_drop,
            on_stop=self._batcher_stopped,
            seconds_per_token=engine.seconds_per_token,
        )
        self._batcher.start()
        self._service = InferenceService(engine.inputs, self._batcher, self.description)
        if self._freeze_heap:
            freeze_long_lived()
        self.metrics.model_load_seconds.set(time.monotonic() - started)
        if self.status is Status.LOADING:
            self._set_status(Status.READY)
            logger.info(
                "model ready in %.1fs on %s", time.monotonic() - started, engine.device_info
            )

    def description(self) -> ModelDescription:
        if self.engine is None:
            raise ShuttingDown(f"the model is not ready ({self.status.value})")
        return describe(self.engine)

    def service(self) -> InferenceService:
        """The model's service while it is ready; ShuttingDown (503) otherwise."""
        return ready_service(self.status, self._service)

    def begin_drain(self) -> None:
        """Refuse new work (503, readiness red) and let queued work finish."""
        if self.status is Status.READY:
            self._set_status(Status.DRAINING)

    @property
    def batcher(self) -> Batcher:
        """The batch queue, once loaded (the engine process's workers submit to it directly)."""
        if self._batcher is None:
            raise ShuttingDown(f"the model is not ready ({self.status.value})")
        return self._batcher

    @property
    def idle(self) -> bool:
        """No text waiting for a batch or running in one."""
        return self._batcher is None or self._batcher.idle

    def abort_queued(self) -> None:
        """Fail the texts still queued (503 with Retry-After): the shutdown's time is up."""
        if self._batcher is not None:
            self._batcher.abort_waiting(ShuttingDown(DRAINING_MESSAGE))

    def deadline(self, budget_s: float | None) -> float | None:
        """The batcher-clock deadline `budget_s` from now (None: the server's default)."""
        if budget_s is None or self._batcher is None:
            return None
        return self._batcher.now() + budget_s

    def _queue_depth(self) -> float:
        return self._batcher.queue_depth if self._batcher is not None else 0

    def _expected_wait(self) -> float:
        return self._batcher.expected_wait_s() if self._batcher is not None else 0.0

    def _record_batch(self, stats: BatchStats) -> None:
        self.metrics.batch_size.observe(stats.size)
        self.metrics.queue_wait.observe(stats.max_queue_wait_s)
        self.metrics.inference_time.observe(stats.run_s)
        self.metrics.tokens.inc(stats.real_tokens)
        if stats.real_tokens:
            self.metrics.padding_ratio.observe(stats.padded_tokens / stats.real_tokens)

    def _record_drop(self, reason: str, texts: int) -> None:
        self.metrics.dropped_texts.labels(reason=reason).inc(texts)

    def _batcher_stopped(self, error: BaseException) -> None:
        """The batcher can no longer serve: say so on every health route, so the pod is replaced."""
        self._set_status(Status.FAILED, f"the batcher stopped: {error!r}")

    async def close(self) -> None:
        """Refuse new work and finish what is queued."""
        self.begin_drain()
        for task in (self._task, self._gauges):
            if task is not None and not task.done():
                task.cancel()
        if self._batcher is not None:
            await self._batcher.close()
        if self._service is not None:
            self._service.close()
