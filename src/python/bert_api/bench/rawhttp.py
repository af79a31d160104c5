"""A minimal HTTP/1.1 client on asyncio streams: one connection per request, bytes as given.

Why not httpx: with thousands of requests in flight its connection pool costs the client more CPU
per request as the pool grows, so on a shared 2-core machine an open-loop client at 70 req/s fell
seconds behind its own schedule and timed out requests the server never saw. This client sends
prepared bytes on a fresh connection (as independent clients do) and parses only the status line,
the headers and a Content-Length or chunked body. `play` sends what no well-behaved client
library would (the hostile benchmark's cases), in pieces, and reports whatever came back.
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def request_bytes(
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
) -> bytes:
    """A well-formed request that asks the server to close the connection after answering."""
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}", "connection: close"]
    if body is not None:
        lines.append(f"content-length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def json_post(path: str, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
    return request_bytes(
        "POST", path, body, {"content-type": "application/json", **(headers or {})}
    )


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """One response from `reader` (raises IncompleteReadError if the server closes first)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    status = int(status_line.split()[1])
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")
        body = b"".join(chunks)
    else:
        body = await reader.read()
    return Answer(status, headers, body)


async def exchange(host: str, port: int, raw: bytes) -> Answer:
    """Send `raw` on a new connection and read one answer; the connection is then closed."""
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    try:
        writer.write(raw)
        await writer.drain()
        return await read_answer(reader)
    finally:
        writer.close()


@dataclass(frozen=True)
class Case:
    """Bytes to send in `chunks`, `pause` seconds apart, then `then`: read, close or reset."""

    family: str
    chunks: tuple[bytes, ...]
    pause: float = 0.0
    then: str = "read"


_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


# Longer than the server's keep-alive (KEEP_ALIVE_SECONDS, 5 s): quiet this long once an answer has
# come means the server has said all it will; in practice the server closes first.
QUIET_S = 6.0


async def _collect(reader: asyncio.StreamReader, received: bytearray, deadline: float) -> None:
    """Read until EOF, the deadline, or QUIET_S of quiet once a final answer has come."""
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                answered = any(not s.startswith(b"1") for s in _STATUS.findall(received))
                data = await asyncio.wait_for(reader.read(65536), QUIET_S if answered else left)
            except TimeoutError:
                return
            if not data:
                return
            received += data
    except ConnectionError:
        return


async def play(port: int, case: Case, timeout: float = 60.0) -> str:
    """Run `case`; its outcome: the statuses answered ('400', '100+200'), or how it ended."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = bytearray()
    deadline = time.monotonic() + timeout
    # Read while sending: a server that answers early (413, 408) and closes would otherwise reset
    # the connection under a client still writing, and the answer would be lost unread.
    collector = asyncio.create_task(_collect(reader, received, deadline))
    try:
        for index, chunk in enumerate(case.chunks):
            if index and case.pause:
                await asyncio.sleep(case.pause)
            if collector.done():
                break
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass  # the server closed first: what it said is being read
    if case.then == "reset":
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
    if case.then != "read":
        collector.cancel()
        writer.close()
        return "client left"
    try:
        await collector
    finally:
        writer.close()
    statuses = [match.decode() for match in _STATUS.findall(bytes(received))]
    if statuses:
        # Distinct statuses in order; pipelined requests get several answers.
        label = "+".join(dict.fromkeys(statuses))
        return label + (" (several answers)" if len(statuses) > len(set(statuses)) else "")
    return "closed, no answer" if time.monotonic() < deadline else "no answer in time"
