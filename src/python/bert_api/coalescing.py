"""One send per answer: what a connection writes in one turn of the event loop leaves as one write.

uvicorn 0.55's httptools protocol writes a response's status line and headers
(`RequestResponseCycle.send` on `http.response.start`) and then its body (on
`http.response.body`) with two `transport.write` calls, and uvloop 0.23's transport sends each at
once while libuv holds nothing queued for the stream (`_initiate_write` in
uvloop/handles/stream.pyx): two send() calls and two TCP segments for every small answer, and
two wake-ups for the client. This transport keeps what is written during one turn of the loop and
writes it at the end of that turn (`loop.call_soon`), so head and body leave together. Served,
that cut the server's CPU a request by 14-30% on `GET /health` and `POST /tokenize`
(docs/BENCHMARKS.md, "One write per answer").

Everything else goes straight to the real transport; `close` writes what is held first. What is
held when the peer has gone is dropped, as uvicorn drops an answer to a client that left (uvloop
raises on a write to a closed transport).
"""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescingTransport(asyncio.Transport):
    """`transport`, with the writes of one loop turn joined into one (see the module's doc)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def flush(self) -> None:
        """Write what is held now (the end of the turn does it anyway)."""
        if not self._held:
            return
        held, self._held = self._held, []
        if not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._held))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)
