"""
CancelOnDisconnect at the ASGI boundary: the server side (receive, send, cancelling the request's
task) is played by the test, which is what lets it order a server cancellation and a client
departure exactly. The end-to-end case over a real server is in lifecycle_test.
"""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from litestar.types import Message, Receive, ReceiveMessage, Scope, Send

from bert_api.disconnect import (
    CLIENT_CLOSED_REQUEST,
    DISCONNECT_SIGNAL,
    CancelOnDisconnect,
    DisconnectSignal,
)


def _scope(method: str, path: str) -> Scope:
    return cast(Scope, {"type": "http", "method": method, "path": path})


SCOPE = _scope("POST", "/embed")


class Exchange:
    """One request as the server sees it: the messages it delivers and those the app sends."""

    def __init__(self, signal: DisconnectSignal | None = None) -> None:
        # The server's disconnect signal, as our protocol offers one (else a watcher task waits).
        self.signal = signal
        self.incoming: asyncio.Queue[ReceiveMessage] = asyncio.Queue()
        self.incoming.put_nowait({"type": "http.request", "body": b"{}", "more_body": False})
        self.sent: list[Message] = []
        self.handling = asyncio.Event()

    async def receive(self) -> ReceiveMessage:
        return await self.incoming.get()

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def slow_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Reads its body, then works until cancelled (a request waiting for its batch)."""
        await receive()
        self.handling.set()
        await asyncio.sleep(3600)

    async def quick_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Reads its body and answers 200 at once."""
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok", "more_body": False})

    @property
    def scope(self) -> Scope:
        if self.signal is None:
            return SCOPE
        return cast(Scope, {**SCOPE, "extensions": {DISCONNECT_SIGNAL: self.signal}})

    def start(self) -> asyncio.Task[None]:
        middleware = CancelOnDisconnect(self.slow_app)
        return asyncio.ensure_future(middleware(self.scope, self.receive, self.send))

    def client_leaves(self) -> None:
        if self.signal is not None:
            self.signal.fire()  # what connections.GuardedProtocol does on connection_lost
        self.incoming.put_nowait({"type": "http.disconnect"})


def _client_leaves(
    server_cancels_too: bool, signalled: bool = False
) -> tuple[asyncio.Task[None], list[Message]]:
    """A request waiting for its batch whose client disconnects (and the server cancels it)."""

    async def main() -> tuple[asyncio.Task[None], list[Message]]:
        exchange = Exchange(DisconnectSignal() if signalled else None)
        task = exchange.start()
        await exchange.handling.wait()
        # Told by the signal, the middleware runs no task of its own; else one watcher.
        assert len(asyncio.all_tasks()) == (2 if signalled else 3)
        # Both before the request's task runs again: the middleware hears the departure first.
        exchange.client_leaves()
        if server_cancels_too:
            task.cancel()  # the server, for example shutting down
        await asyncio.wait({task}, timeout=5)
        return task, exchange.sent

    return asyncio.run(main())


@pytest.mark.parametrize("signalled", [False, True])
def test_a_departed_client_ends_its_request_with_499(signalled: bool) -> None:
    task, sent = _client_leaves(server_cancels_too=False, signalled=signalled)
    assert task.done() and not task.cancelled()
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == CLIENT_CLOSED_REQUEST


@pytest.mark.parametrize("signalled", [False, True])
def test_a_server_cancellation_at_the_same_moment_is_not_absorbed(signalled: bool) -> None:
    task, sent = _client_leaves(server_cancels_too=True, signalled=signalled)
    # The server asked for the task to stop: it must stop cancelled, not answer and return.
    assert task.cancelled()
    assert sent == []


def test_other_requests_are_not_watched() -> None:
    """
    A health check whose client leaves mid-answer is still answered in full: only inference
    routes are cancelled, and the others get the server's own receive and send.
    """

    async def main() -> tuple[list[Message], bool]:
        exchange = Exchange()
        seen: dict[str, object] = {}

        async def health_app(scope: Scope, receive: Receive, send: Send) -> None:
            seen.update(receive=receive, send=send)
            await receive()
            exchange.incoming.put_nowait({"type": "http.disconnect"})
            await asyncio.sleep(0.05)  # where an inference request would be cancelled
            await exchange.quick_app(scope, _body_once, send)

        health = _scope("GET", "/health")
        await CancelOnDisconnect(health_app)(health, exchange.receive, exchange.send)
        untouched = seen["receive"] == exchange.receive and seen["send"] == exchange.send
        return exchange.sent, untouched

    sent, untouched = asyncio.run(main())
    assert untouched
    assert [m.get("status") for m in sent] == [200, None]


async def _body_once() -> ReceiveMessage:
    return {"type": "http.request", "body": b"", "more_body": False}


@pytest.mark.parametrize("signalled", [False, True])
@pytest.mark.parametrize("leave", [False, True])
def test_a_disconnect_after_the_answer_is_not_a_departure(leave: bool, signalled: bool) -> None:
    async def main() -> list[Message]:
        exchange = Exchange(DisconnectSignal() if signalled else None)

        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            await exchange.quick_app(scope, receive, send)
            if leave:  # servers report the finished connection as a disconnect
                exchange.client_leaves()
                await asyncio.sleep(0.01)

        await CancelOnDisconnect(answer)(exchange.scope, exchange.receive, exchange.send)
        return exchange.sent

    sent = asyncio.run(main())
    assert [m.get("status") for m in sent] == [200, None]


def test_a_client_gone_before_its_body_is_read_ends_with_499_not_500() -> None:
    """The server reports the departure (or a malformed chunked body) while the body is read."""

    async def main() -> tuple[asyncio.Task[None], list[Message]]:
        exchange = Exchange()
        exchange.incoming = asyncio.Queue()
        exchange.incoming.put_nowait({"type": "http.request", "body": b"{", "more_body": True})
        exchange.incoming.put_nowait({"type": "http.disconnect"})

        async def reads_its_body(scope: Scope, receive: Receive, send: Send) -> None:
            while (await receive()).get("more_body"):
                pass
            await send({"type": "http.response.start", "status": 200, "headers": []})

        task = asyncio.ensure_future(
            CancelOnDisconnect(reads_its_body)(SCOPE, exchange.receive, exchange.send)
        )
        await asyncio.wait({task}, timeout=5)
        return task, exchange.sent

    task, sent = asyncio.run(main())
    assert task.done() and not task.cancelled()
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [
        CLIENT_CLOSED_REQUEST
    ]


def test_a_server_cancellation_while_the_body_is_read_still_stands() -> None:
    async def main() -> asyncio.Task[None]:
        exchange = Exchange()
        exchange.incoming = asyncio.Queue()
        reading = asyncio.Event()

        async def reads_its_body(scope: Scope, receive: Receive, send: Send) -> None:
            reading.set()
            await receive()

        task = asyncio.ensure_future(
            CancelOnDisconnect(reads_its_body)(SCOPE, exchange.receive, exchange.send)
        )
        await reading.wait()
        task.cancel()  # the server, shutting down
        exchange.incoming.put_nowait({"type": "http.disconnect"})
        await asyncio.wait({task}, timeout=5)
        return task

    assert asyncio.run(main()).cancelled()


def test_a_request_the_servers_shutdown_cancels_is_answered_503_not_500() -> None:
    async def main() -> tuple[asyncio.Task[None], list[Message]]:
        exchange = Exchange()
        task = exchange.start()
        await exchange.handling.wait()
        task.cancel()  # the server's grace period ran out; the client is still there
        await asyncio.wait({task}, timeout=5)
        return task, exchange.sent

    task, sent = asyncio.run(main())
    assert task.cancelled()
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 503
    assert (b"retry-after", b"5") in sent[0]["headers"]
    assert b"shutting down" in cast(bytes, sent[1].get("body"))
