"""CoalescingTransport over a real loopback TCP connection, on asyncio's and uvloop's loops."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
import uvloop

from bert_api.coalescing import CoalescingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n"
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


class _Counting(asyncio.Transport):
    """The real transport, counting the writes that reach it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        self.transport.close()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size()


class _Server(asyncio.Protocol):
    def __init__(self, ready: asyncio.Future[_Server]) -> None:
        self.ready = ready
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.counting = _Counting(cast(asyncio.Transport, transport))
        self.transport = CoalescingTransport(self.counting, asyncio.get_running_loop())
        self.ready.set_result(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(None)


Scenario = Callable[[_Server, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[Any]]


def _connected(loop_name: str, scenario: Scenario) -> Any:
    """Run `scenario` with a server protocol and a client connected to it over loopback."""

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[_Server] = loop.create_future()
        server = await loop.create_server(lambda: _Server(ready), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            protocol = await asyncio.wait_for(ready, 10)
            return await asyncio.wait_for(scenario(protocol, reader, writer), 10)
        finally:
            writer.close()
            server.close()

    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        return runner.run(main())


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_the_writes_of_one_turn_reach_the_socket_as_one(loop_name: str) -> None:
    async def scenario(
        server: _Server, reader: asyncio.StreamReader, _: asyncio.StreamWriter
    ) -> tuple[bytes, list[bytes], int]:
        server.transport.write(HEAD)
        server.transport.write(b"body")
        held = server.transport.get_write_buffer_size()
        assert server.counting.writes == []  # nothing sent before the turn ends
        received = await reader.readexactly(len(HEAD) + 4)
        return received, server.counting.writes, held

    received, writes, held = _connected(loop_name, scenario)
    assert received == HEAD + b"body"
    assert writes == [HEAD + b"body"]
    assert held == len(HEAD) + 4


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_close_writes_what_is_held_first(loop_name: str) -> None:
    async def scenario(
        server: _Server, reader: asyncio.StreamReader, _: asyncio.StreamWriter
    ) -> bytes:
        server.transport.write(b"bye")
        server.transport.close()
        return await reader.read()  # to the end of the stream

    assert _connected(loop_name, scenario) == b"bye"


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_what_is_held_when_the_peer_has_gone_is_dropped(loop_name: str) -> None:
    async def scenario(
        server: _Server, _: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> list[bytes]:
        writer.close()
        await server.lost
        server.transport.write(b"too late")  # uvloop's own transport raises here
        await asyncio.sleep(0.01)  # the turn ends: nothing reaches the closed socket
        return server.counting.writes

    assert _connected(loop_name, scenario) == []
