"""A front-end worker's Host: it prepares requests itself and runs them in the engine process.

The worker reads the model's tokenizer and manifest from the prepared directory the engine
announces, so prompting, tokenization and checks happen here, on the worker's core; only token ids
cross the socket (RemoteQueue), and the results come back. Health follows the engine's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from bert_api.heap import freeze_long_lived
from bert_api.hosting import DRAINING_MESSAGE, Status, ready_service
from bert_api.ipc import (
    Cancel,
    Failed,
    Frames,
    ModelSetup,
    decode_to_worker,
    frame,
    submit_message,
    unpack_results,
)
from bert_api.ipc import Status as StatusMessage
from bert_api.metrics import ServiceMetrics
from bert_api.settings import Settings
from bert_runtime.errors import (
    BertRuntimeError,
    DeadlineExceeded,
    InputError,
    Overloaded,
    ShuttingDown,
)
from bert_runtime.manifest import read_manifest
from bert_runtime.serving.description import ModelDescription
from bert_runtime.serving.service import InferenceService
from bert_runtime.serving.task_inputs import TaskInputs
from bert_runtime.serving.tasks import AnyResult, TaskRequest
from bert_runtime.serving.tokenizer import TextTokenizer

logger = logging.getLogger(__name__)
R = TypeVar("R", bound=AnyResult)


def _error(message: Failed) -> BertRuntimeError:
    if message.error == "deadline":
        return DeadlineExceeded(message.message, message.retry_after_s)
    if message.error == "overloaded":
        return Overloaded(message.message, message.retry_after_s)
    if message.error == "shutting_down":
        return ShuttingDown(message.message)
    if message.error == "input":
        return InputError(message.message)
    return BertRuntimeError(message.message)


class RemoteQueue:
    """The engine process's batch queue, over the socket (a BatchQueue for InferenceService)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._writer = transport
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future[list[AnyResult]]] = {}

    @property
    def idle(self) -> bool:
        return not self._pending

    async def submit_many(
        self,
        sequences: Sequence[np.ndarray],
        requests: Sequence[TaskRequest[R]],
        deadline: float | None = None,
    ) -> list[R]:
        key = next(self._ids)
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        self._writer.write(frame(submit_message(key, list(sequences), list(requests), deadline)))
        try:
            return await future
        except asyncio.CancelledError:
            if not future.done() and not self._writer.is_closing():
                self._writer.write(frame(Cancel(key)))  # the texts still waiting are dropped
            raise
        finally:
            self._pending.pop(key, None)

    def deliver(self, key: int, results: list[AnyResult] | BertRuntimeError) -> None:
        future = self._pending.get(key)
        if future is None or future.done():
            return
        if isinstance(results, BertRuntimeError):
            future.set_exception(results)
        else:
            future.set_result(results)

    def fail_all(self, error: BertRuntimeError) -> None:
        """Fail every submission waiting here; the engine drops their texts still queued."""
        for key in list(self._pending):
            self.deliver(key, error)
            if not self._writer.is_closing():
                self._writer.write(frame(Cancel(key)))


class _EngineLink(asyncio.Protocol):
    """The worker's end of the engine's socket: whole messages to the host as they arrive."""

    def __init__(self, host: WorkerHost) -> None:
        self._host = host
        self._frames = Frames()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast, not isinstance: uvloop's transports are not asyncio.Transport subclasses.
        self._host.linked(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        try:
            for body in self._frames.feed(data):
                self._host.received(body)
        except Exception as error:  # - a broken link: every health route says so
            logger.exception("the engine link failed")
            self._host.lost(f"the engine link failed: {error!r}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._host.lost(f"lost the engine process: {exc!r}")


class WorkerHost:
    """The Host of a front-end worker process (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        metrics: ServiceMetrics,
        engine_socket: Path,
        *,
        freeze_heap: bool = False,
    ) -> None:
        """`freeze_heap`: a server process's own host (heap.py); not for a test's."""
        self.settings = settings
        self._freeze_heap = freeze_heap
        self.metrics = metrics
        self.status = Status.LOADING
        self.error: str | None = None
        self._socket = engine_socket
        self._queue: RemoteQueue | None = None
        self._service: InferenceService | None = None
        self._description: ModelDescription | None = None
        self._draining = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._connect(), name="engine-link")

    async def _connect(self) -> None:
        """The engine process creates its socket first; a worker started early waits for it."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + 60
        while True:
            try:
                await loop.create_unix_connection(lambda: _EngineLink(self), str(self._socket))
                return
            except (FileNotFoundError, ConnectionRefusedError) as error:
                if time.monotonic() > deadline:
                    self._fail(f"cannot reach the engine process: {error!r}")
                    return
                await asyncio.sleep(0.05)

    def linked(self, transport: asyncio.Transport) -> None:
        self._queue = RemoteQueue(transport)

    def received(self, body: bytes) -> None:
        message = decode_to_worker(body)
        if isinstance(message, StatusMessage):
            asyncio.get_running_loop().create_task(self._on_status(message))
        elif self._queue is not None:
            if isinstance(message, Failed):
                self._queue.deliver(message.id, _error(message))
            else:
                self._queue.deliver(message.id, unpack_results(message))

    async def _on_status(self, message: StatusMessage) -> None:
        if message.setup is not None and self._service is None:
            self._service = await asyncio.to_thread(self._build_service, message.setup)
            if self._freeze_heap:
                freeze_long_lived()
        if message.setup is not None:
            self._description = message.setup.description
        self.error = message.error
        status = Status(message.status)
        if self._draining and status is Status.READY:
            status = Status.DRAINING
        self.status = status
        if status is Status.FAILED and self._queue is not None:
            self._queue.fail_all(ShuttingDown(f"the model failed: {message.error}"))

    def _build_service(self, setup: ModelSetup) -> InferenceService:
        model_dir = Path(setup.prepared_dir)
        tokenizer = TextTokenizer.from_dir(model_dir, setup.max_length, setup.truncation)
        inputs = TaskInputs(tokenizer, read_manifest(model_dir), setup.capabilities)
        assert self._queue is not None
        return InferenceService(inputs, self._queue, self._describe)

    def _describe(self) -> ModelDescription:
        if self._description is None:
            raise ShuttingDown("the model is not ready (loading)")
        return self._description

    def lost(self, error: str) -> None:
        if not self._closing:
            self._fail(error)

    def _fail(self, error: str) -> None:
        self.status = Status.FAILED
        self.error = error
        if self._queue is not None:
            self._queue.fail_all(ShuttingDown(error))

    def service(self) -> InferenceService:
        return ready_service(self.status, self._service)

    def deadline(self, budget_s: float | None) -> float | None:
        # The engine's batcher runs on time.monotonic: CLOCK_MONOTONIC, one clock per host.
        return None if budget_s is None else time.monotonic() + budget_s

    def begin_drain(self) -> None:
        self._draining = True
        if self.status is Status.READY:
            self.status = Status.DRAINING

    @property
    def idle(self) -> bool:
        return self._queue is None or self._queue.idle

    def abort_queued(self) -> None:
        if self._queue is not None:
            self._queue.fail_all(ShuttingDown(DRAINING_MESSAGE))

    async def close(self) -> None:
        self._closing = True
        self.begin_drain()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._service is not None:
            self._service.close()
