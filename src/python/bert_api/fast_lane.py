"""The fast lane: well-formed inference requests answered without Litestar's per-request work.

Litestar 2.25 spends more server CPU on each request than tokenizing a short text and running
the tiny model together: it copies the route handler for each guard, resolves the dependencies,
builds the route's signature model and a Response object (profile in docs/BENCHMARKS.md, host
path). The fast lane serves the common case of the inference routes itself, and calls the very
function Litestar would call (the route handler's `fn`) with the same strict body decoding into
the route's Struct, the same header check (guards.header_check), the same `Inference` and the same
error answers (errors.error_answer).

Whatever it does not take plainly goes on to Litestar unchanged, with the body it read replayed,
so Litestar stays the one source of those answers: a route with path parameters, a repeated or
unusual header, a body sent chunked or over MAX_BODY_BYTES, a body that does not decode. The
disconnect watcher and the request metrics sit outside it and see both lanes alike.
"""

from __future__ import annotations

import inspect
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from bert_api.errors import error_answer
from bert_api.guards import INFERENCE, HeaderCheck
from bert_api.hosting import Host
from bert_api.limits import RequestLimits
from bert_api.routes_common import BODY, MAX_BUDGET_S, TIMEOUT_HEADER, inference_for

# The headers the lane reads; a request repeating one of them goes to Litestar.
_CONTENT_TYPE = b"content-type"
_AUTHORIZATION = b"authorization"
_CONTENT_LENGTH = b"content-length"
_TRANSFER_ENCODING = b"transfer-encoding"
_BUDGET = TIMEOUT_HEADER.lower().encode()
_READ = frozenset({_CONTENT_TYPE, _AUTHORIZATION, _CONTENT_LENGTH, _TRANSFER_ENCODING, _BUDGET})
# Budgets the lane reads itself; any other spelling is Litestar's to accept or refuse.
_PLAIN_NUMBER = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")
_JSON = [(b"content-type", b"application/json")]


@dataclass(frozen=True)
class LaneRoute:
    """A route the lane serves: its body's Struct and its function, `fn(data, inference)`."""

    body: type[msgspec.Struct]
    fn: Callable[..., Awaitable[Any]]


def lane_routes(handlers: Iterable[object]) -> dict[str, LaneRoute]:
    """
    The inference routes the lane can serve, by path: POST only, no path parameters, the
    signature `(data, inference)` and a body Struct (routes_common.inference_route).
    """
    routes: dict[str, LaneRoute] = {}
    for handler in handlers:
        if not isinstance(handler, HTTPRouteHandler) or not handler.opt.get(INFERENCE):
            continue
        body = handler.opt.get(BODY)
        parameters = list(inspect.signature(handler.fn).parameters)
        if handler.http_methods != {"POST"} or parameters != ["data", "inference"] or body is None:
            continue
        for path in handler.paths:
            if "{" not in path:
                routes[path] = LaneRoute(body, handler.fn)
    return routes


@dataclass(frozen=True)
class _Request:
    """The headers the lane reads, once each; None where a request is Litestar's to answer."""

    content_type: str
    authorization: str
    budget_s: float | None

    @staticmethod
    def read(headers: Iterable[tuple[bytes, bytes]], max_body_bytes: int) -> _Request | None:
        found: dict[bytes, bytes] = {}
        for name, value in headers:
            if name in _READ:
                if name in found:
                    return None
                found[name] = value
        length = found.get(_CONTENT_LENGTH, b"")
        if _TRANSFER_ENCODING in found or not length.isdigit() or int(length) > max_body_bytes:
            return None
        budget_s = None
        if _BUDGET in found:
            text = found[_BUDGET].decode("latin-1")
            if not _PLAIN_NUMBER.fullmatch(text):
                return None
            budget_s = float(text)
            if not 0 < budget_s <= MAX_BUDGET_S:
                return None
        return _Request(
            found.get(_CONTENT_TYPE, b"").decode("latin-1"),
            found.get(_AUTHORIZATION, b"").decode("latin-1"),
            budget_s,
        )


class FastLane:
    """ASGI middleware in front of the Litestar app `app`: see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        routes: dict[str, LaneRoute],
        host: Host,
        limits: RequestLimits,
        check_headers: HeaderCheck,
    ) -> None:
        self.app = app
        self._routes = routes
        self._host = host
        self._limits = limits
        self._check_headers = check_headers
        self._max_body_bytes = host.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == ScopeType.HTTP and scope.get("method") == "POST":
            route = self._routes.get(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        request = _Request.read(scope["headers"], self._max_body_bytes)
        if request is None:
            await self.app(scope, receive, send)
            return
        try:
            self._check_headers(request.content_type, request.authorization)
        except Exception as error:
            await _answer(send, error, scope["path"])
            return
        messages, body = await _read_body(receive)
        try:
            data = msgspec.json.decode(body, type=route.body) if body is not None else None
        except (msgspec.DecodeError, RecursionError):
            data = None
        if data is None:  # Litestar's to refuse, with its own words
            await self.app(scope, _replay(messages, receive), send)
            return
        try:
            inference = inference_for(self._host, self._limits, request.budget_s)
            result = await route.fn(data=data, inference=inference)
        except Exception as error:  # not CancelledError: the disconnect watcher's business
            await _answer(send, error, scope["path"])
            return
        await _send(send, 200, msgspec.json.encode(result), _JSON)


async def _read_body(receive: Receive) -> tuple[list[ReceiveMessage], bytes | None]:
    """The messages read and the whole body (None when the client left before sending it)."""
    messages: list[ReceiveMessage] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replay(messages: list[ReceiveMessage], receive: Receive) -> Receive:
    """`receive`, with the messages already read given again first."""
    pending = deque(messages)

    async def replayed() -> ReceiveMessage:
        return pending.popleft() if pending else await receive()

    return replayed


async def _answer(send: Send, error: BaseException, path: str) -> None:
    answer = error_answer(error, f"POST {path}")
    headers = _JSON + [(k.lower().encode(), v.encode()) for k, v in answer.headers.items()]
    await _send(send, answer.status, answer.body(), headers)


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})
