"""The engine process's side of the workers' socket: their submissions go into the batcher.

Each submission is admitted at once (Overloaded or ShuttingDown are answered at once) and its
results are sent back from a callback when the batcher resolves them, so a submission costs no
task of its own; a worker's Cancel (its client left) cancels the texts still waiting. Every status
change of the model is sent to every worker, so their health routes answer what the engine knows.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path
from typing import Any, cast

from bert_api.ipc import (
    Cancel,
    Failed,
    Frames,
    ModelSetup,
    Status,
    Submit,
    decode_to_engine,
    frame,
    result_message,
    unpack_submit,
)
from bert_api.model_host import ModelHost
from bert_runtime.errors import DeadlineExceeded, InputError, Overloaded, ShuttingDown

logger = logging.getLogger(__name__)


def _failure(key: int, error: BaseException) -> Failed:
    if isinstance(error, DeadlineExceeded):
        return Failed(key, "deadline", str(error), error.retry_after_s)
    if isinstance(error, Overloaded):
        return Failed(key, "overloaded", error.reason, error.retry_after_s)
    if isinstance(error, ShuttingDown):
        return Failed(key, "shutting_down", str(error))
    if isinstance(error, InputError):
        return Failed(key, "input", str(error))
    logger.error("submission %d failed", key, exc_info=error)
    return Failed(key, "internal", f"inference failed: {error}")


class _WorkerLink(asyncio.Protocol):
    """One worker's connection."""

    def __init__(self, server: EngineServer) -> None:
        self._server = server
        self._frames = Frames()
        self._running: dict[int, asyncio.Future[list[Any]]] = {}
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast, not isinstance: uvloop's transports are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        self._server.links.add(self)
        self.transport.write(frame(self._server.status()))

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.links.discard(self)
        for future in self._running.values():
            future.cancel()  # the worker has gone: its texts still waiting are dropped
        self._running.clear()

    def data_received(self, data: bytes) -> None:
        for body in self._frames.feed(data):
            message = decode_to_engine(body)
            if isinstance(message, Submit):
                self._submit(message)
            elif isinstance(message, Cancel) and (future := self._running.pop(message.id, None)):
                future.cancel()

    def _submit(self, message: Submit) -> None:
        try:
            sequences, requests = unpack_submit(message)
            future = self._server.host.batcher.enqueue(sequences, requests, message.deadline)
        except Exception as error:  # - admission refused: answered at once
            self._send(frame(_failure(message.id, error)))
            return
        self._running[message.id] = future
        future.add_done_callback(functools.partial(self._reply, message.id))

    def _reply(self, key: int, future: asyncio.Future[list[Any]]) -> None:
        self._running.pop(key, None)
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self._send(frame(_failure(key, error)))
        else:
            self._send(frame(result_message(key, future.result())))

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class EngineServer:
    """Serves `host`'s batch queue to the workers on the Unix socket at `path`."""

    def __init__(self, host: ModelHost, path: Path) -> None:
        self.host = host
        self._path = path
        self.links: set[_WorkerLink] = set()
        self._server: asyncio.AbstractServer | None = None
        host.status_listeners.append(self._broadcast_status)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _WorkerLink(self), str(self._path))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for link in list(self.links):
            if link.transport is not None:
                link.transport.close()

    def status(self) -> Status:
        host = self.host
        engine = host.engine
        setup = None
        if engine is not None and host.model_dir is not None:
            setup = ModelSetup(
                str(host.model_dir),
                engine.max_length,
                engine.tokenizer.truncation,
                engine.capabilities,
                host.description(),
            )
        return Status(host.status.value, host.error, setup)

    def _broadcast_status(self) -> None:
        message = frame(self.status())
        for link in self.links:
            link._send(message)
