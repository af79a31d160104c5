"""Slow, idle and too many connections, and the drain on SIGTERM, against a real server process."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import resource
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from bert_api.connections import (
    ConnectionLimits,
    QuietAcceptErrors,
    guarded_protocol,
    raise_open_file_limit,
)
from bert_api.testing import RunningServer, free_port, run_server
from bert_runtime.testutil.models import TINY_BERT_MLM

LIMITS = {
    "MODEL_NAME": str(TINY_BERT_MLM),
    "MAX_CONNECTIONS": "6",
    "HEADER_TIMEOUT_SECONDS": "1",
    "BODY_TIMEOUT_SECONDS": "1",
    "KEEP_ALIVE_SECONDS": "1",
}
BODY = b'{"inputs": "hi"}'
EMBED = (
    b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(LIMITS, tmp_path_factory.mktemp("conn")) as running:
        yield running


def _connect(server: RunningServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (10 s at most)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _read_response(sock: socket.socket) -> bytes:
    """One whole response (head and its Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bytes, float]:
    started = time.monotonic()
    data = _read_all(sock)
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"held for {elapsed:.1f}s"
    return data, elapsed


def test_a_connection_that_sends_nothing_is_closed_quietly(server: RunningServer) -> None:
    with _connect(server) as sock:
        data, _ = _closed_within(sock, 5)
    assert data == b""


def test_slow_headers_get_408_and_the_connection_closes(server: RunningServer) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        data, _ = _closed_within(sock, 5)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]["type"] == "request_timeout"


def test_a_slow_body_gets_408_and_the_server_stays_healthy(server: RunningServer) -> None:
    with _connect(server) as sock:
        sock.sendall(
            b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"inputs":'
        )
        data, _ = _closed_within(sock, 5)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert httpx.post(f"{server.url}/embed", json={"inputs": "hi"}).status_code == 200


def test_a_kept_alive_connection_is_closed_after_its_idle_time(server: RunningServer) -> None:
    with _connect(server) as sock:
        sock.sendall(EMBED)
        data, elapsed = _closed_within(sock, 5)
    assert data.startswith(b"HTTP/1.1 200 ")
    assert elapsed >= 0.5


def test_connections_over_the_limit_get_429_at_once_and_room_comes_back(
    server: RunningServer,
) -> None:
    held = [_connect(server) for _ in range(6)]
    try:
        time.sleep(0.2)  # the server has accepted them
        with _connect(server) as extra:
            data, elapsed = _closed_within(extra, 1)
        assert data.startswith(b"HTTP/1.1 429 ")
        assert b"retry-after: 1" in data.lower()
        assert json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]["type"] == "overloaded"
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_sigterm_answers_503_on_kept_alive_connections_then_exits_0(tmp_path: Path) -> None:
    env = {**LIMITS, "KEEP_ALIVE_SECONDS": "30", "HEADER_TIMEOUT_SECONDS": "30"}
    with run_server(env, tmp_path) as running, _connect(running) as sock:
        sock.sendall(EMBED)
        assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
        running.process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        sock.sendall(EMBED)  # the same kept-alive connection, while the server drains
        data = _read_all(sock)
        assert data.startswith(b"HTTP/1.1 503 "), data[:200]
        head = data.split(b"\r\n\r\n", 1)[0].lower()
        assert b"connection: close" in head and b"retry-after: 5" in head
        assert running.process.wait(timeout=30) == 0


def test_texts_queued_when_the_grace_runs_out_get_503_not_500(tmp_path: Path) -> None:
    # A batch waits a whole second to fill; the grace is half a second: the queue cannot drain.
    env = {
        **LIMITS,
        "MAX_QUEUE_DELAY_MS": "1000",
        "SHUTDOWN_GRACE_SECONDS": "0.5",
        "MAX_CONNECTIONS": "64",
    }
    with run_server(env, tmp_path) as running:
        # A batch of several has just run, so the next texts wait (the queue delay) for company.
        busy = httpx.post(f"{running.url}/embed", json={"inputs": ["busy", "model"]})
        assert busy.status_code == 200
        pending = []
        for _ in range(3):
            sock = _connect(running)
            sock.sendall(EMBED)
            pending.append(sock)
        time.sleep(0.2)
        running.process.send_signal(signal.SIGTERM)
        answers = [_read_all(sock) for sock in pending]
        for sock in pending:
            sock.close()
        assert all(a.startswith(b"HTTP/1.1 503 ") for a in answers), [a[:80] for a in answers]
        assert running.process.wait(timeout=30) == 0


def test_failed_accepts_are_one_log_line_per_interval_not_a_traceback_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = QuietAcceptErrors(interval_s=3600)
    loop = asyncio.new_event_loop()
    try:
        context = {
            "message": "socket.accept() out of system resource",
            "exception": OSError(errno.EMFILE, "Too many open files"),
        }
        with caplog.at_level(logging.ERROR):
            for _ in range(1000):
                handler(loop, context)
    finally:
        loop.close()
    lines = [r for r in caplog.records if "accepting connections fails" in r.getMessage()]
    assert len(lines) == 1
    assert all(r.exc_info is None for r in caplog.records)


def test_the_first_failed_accept_is_reported_even_soon_after_boot(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """time.monotonic() starts near 0 at boot: the first report must not wait for the interval."""
    monkeypatch.setattr("bert_api.connections.time.monotonic", lambda: 5.0)
    handler = QuietAcceptErrors(interval_s=3600)
    loop = asyncio.new_event_loop()
    try:
        context = {"message": "socket.accept() out of system resource", "exception": OSError()}
        with caplog.at_level(logging.ERROR):
            handler(loop, context)
    finally:
        loop.close()
    assert [r for r in caplog.records if "accepting connections fails" in r.getMessage()]


def test_the_open_file_limit_is_raised_toward_what_the_connections_need() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = soft + 16 if hard == resource.RLIM_INFINITY else min(soft + 16, hard)
    assert raise_open_file_limit(wanted) >= wanted


def test_metrics_on_their_own_port_and_not_beside_the_api(tmp_path: Path) -> None:
    metrics_port = free_port()
    env = {"MODEL_NAME": str(TINY_BERT_MLM), "METRICS_PORT": str(metrics_port)}
    with run_server(env, tmp_path) as running:
        assert httpx.post(f"{running.url}/embed", json={"inputs": "hi"}).status_code == 200
        assert httpx.get(f"{running.url}/metrics").status_code == 404
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert scraped.status_code == 200
        assert 'inference_requests_total{status="200"} 1.0' in scraped.text


class _DisconnectProbe:
    """
    An ASGI app whose /slow request waits (up to 5 s) to hear that its client has gone, and
    records what it heard; then it answers, as a handler that was not cancelled would.
    """

    def __init__(self) -> None:
        self.heard: list[str] = []
        self.errors: list[BaseException] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        if scope["path"] == "/slow":
            try:
                message = await asyncio.wait_for(receive(), 5)
                self.heard.append(message["type"])
            except TimeoutError:
                self.heard.append("nothing")
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        except BaseException as error:  # what uvloop raises on a closed transport
            self.errors.append(error)
            raise


@contextmanager
def _in_process_server(
    app: _DisconnectProbe, limits: ConnectionLimits
) -> Iterator[tuple[str, int]]:
    """uvicorn with the guarded protocol on uvloop (as served), in a thread of this process."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=guarded_protocol(limits), loop="uvloop"
    )
    config.log_config = None
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(10)


GUARDED = ConnectionLimits(
    max_connections=10, header_timeout_s=5, body_timeout_s=5, max_header_bytes=1024
)


def test_a_running_request_hears_its_client_leave_with_pipelined_requests_behind_it() -> None:
    """
    uvicorn marks only the newest request of a connection disconnected; the running one would go
    on and write to the closed transport (uvloop raises). Every request of the connection hears it.
    """
    app = _DisconnectProbe()
    request = b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    with _in_process_server(app, GUARDED) as address:
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(request + request + b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.3)
        deadline = time.monotonic() + 6
        while not app.heard and time.monotonic() < deadline:
            time.sleep(0.01)
    assert app.heard == ["http.disconnect"]  # the pipelined ones never start
    assert app.errors == []


def test_headers_over_the_cap_get_431_and_the_connection_closes() -> None:
    app = _DisconnectProbe()
    with _in_process_server(app, GUARDED) as address:
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(b"GET /fast HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000)
            answer = _read_all(sock)
        with socket.create_connection(address, timeout=10) as sock:
            # Under the cap, with a body and a pipelined request in the same chunk: answered.
            body = b"x" * 4000
            sock.sendall(
                b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
                + b"GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            both = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431 ")
    error = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    assert error["type"] == "headers_too_large" and "1024 bytes" in error["message"]
    assert both.count(b"HTTP/1.1 200 OK") == 2


def test_malformed_requests_write_one_warning_per_interval_not_one_each(
    server: RunningServer,
) -> None:
    before = server.log.read_text(errors="replace").count("Invalid HTTP request received.")
    for _ in range(20):
        with _connect(server) as sock:
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            assert _read_all(sock).startswith(b"HTTP/1.1 400 ")
    time.sleep(0.2)
    after = server.log.read_text(errors="replace").count("Invalid HTTP request received.")
    assert after >= 1 and after - before <= 1
