"""Cancel an inference request's handler when its client goes away, so its texts are not run.

Under overload clients time out and retry; without this, every abandoned text would still be run,
spending the capacity the retries need. Nothing can reach a client that has gone, so the answer
recorded is 499 (nginx's "client closed request"), which only the request metrics see.
Written here because Litestar has no such option; it is plain ASGI. Our server's protocol
(connections.py) offers each request a `DisconnectSignal` in its scope, so no task per request has
to wait on `receive` to hear the client leave; under another server a watcher task does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from litestar.types import (
    ASGIApp,
    HTTPDisconnectEvent,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from bert_api.request_metrics import is_inference_request

CLIENT_CLOSED_REQUEST = 499
# The key of scope["extensions"] under which the server offers a request's DisconnectSignal.
DISCONNECT_SIGNAL = "bert_serve.disconnect"
_DISCONNECT: HTTPDisconnectEvent = {"type": "http.disconnect"}


_SHUTDOWN_BODY = (
    b'{"error":{"type":"unavailable","message":"the server is shutting down: retry on another '
    b'replica"}}'
)


async def send_shutdown(send: Send) -> None:
    """A 503 for a request still running when the server's shutdown grace ran out."""
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 503,
        "headers": [
            (b"content-type", b"application/json"),
            (b"retry-after", b"5"),
            (b"connection", b"close"),
            (b"content-length", str(len(_SHUTDOWN_BODY)).encode()),
        ],
    }
    body: HTTPResponseBodyEvent = {
        "type": "http.response.body",
        "body": _SHUTDOWN_BODY,
        "more_body": False,
    }
    await send(start)
    await send(body)


class DisconnectSignal:
    """The server's word, per request, that its client left before the answer was complete."""

    __slots__ = ("_callback", "fired")

    def __init__(self) -> None:
        self._callback: Callable[[], None] | None = None
        self.fired = False

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call `callback` when the client leaves (at once if it has left)."""
        if self.fired:
            callback()
        else:
            self._callback = callback

    def fire(self) -> None:
        if not self.fired:
            self.fired = True
            callback, self._callback = self._callback, None
            if callback is not None:
                callback()


def disconnect_signal(scope: Mapping[str, Any]) -> DisconnectSignal | None:
    """The request's signal, where the server offers one."""
    extensions = scope.get("extensions") or {}
    signal = extensions.get(DISCONNECT_SIGNAL)
    return signal if isinstance(signal, DisconnectSignal) else None


class CancelOnDisconnect:
    """
    ASGI middleware: once the body is read, the client's disconnect cancels the handler (which
    runs in the server's own task). The server's DisconnectSignal says when; without one, a
    watcher task waits on `receive` for it (one extra task per request).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = asyncio.current_task()
        if handler is None or not is_inference_request(scope):
            await self.app(scope, receive, send)
            return
        watcher: asyncio.Task[None] | None = None
        client_gone = started = finished = watcher_cancelled = body_read = False

        def client_left() -> None:
            nonlocal client_gone, watcher_cancelled
            # Servers also report a disconnect once the response is complete: not a departure.
            if not finished:
                client_gone = watcher_cancelled = True
                handler.cancel()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            client_left()

        signal = disconnect_signal(scope)

        async def handler_receive() -> ReceiveMessage:
            nonlocal watcher, client_gone, body_read
            if watcher is not None:  # the body is read; the watcher owns `receive` now
                await asyncio.shield(watcher)
                return _DISCONNECT
            if body_read:  # and the server's signal watches: `receive` waits for the disconnect
                return await receive()
            message = await receive()
            if message["type"] == "http.disconnect":
                # Gone before its body was read (or the server found the body malformed and
                # closed the connection): nothing to answer, and nothing ran.
                client_gone = True
                raise asyncio.CancelledError()
            if message["type"] == "http.request" and not message.get("more_body", False):
                # Not before the body is read: the handler reads it, within its size limit.
                body_read = True
                if signal is not None:
                    signal.subscribe(client_left)
                else:
                    watcher = asyncio.ensure_future(watch())
            return message

        async def handler_send(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        try:
            await self.app(scope, handler_receive, handler_send)
        except asyncio.CancelledError:
            # Take back only our own cancellation; one the server asked for as well still stands.
            server_cancelled = not client_gone or (
                handler.uncancel() > 0 if watcher_cancelled else handler.cancelling() > 0
            )
            if server_cancelled:
                if not started and not client_gone:
                    # The server's shutdown ran out of time: say so (503, retry elsewhere)
                    # rather than let the server answer a bare 500.
                    await send_shutdown(send)
                raise
            if not started:
                start: HTTPResponseStartEvent = {
                    "type": "http.response.start",
                    "status": CLIENT_CLOSED_REQUEST,
                    "headers": [],
                }
                body: HTTPResponseBodyEvent = {
                    "type": "http.response.body",
                    "body": b"",
                    "more_body": False,
                }
                await send(start)
                await send(body)
        finally:
            if watcher is not None:
                watcher.cancel()
