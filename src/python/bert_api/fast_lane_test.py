"""The fast lane answers exactly as Litestar would, and hands Litestar what it does not take.

Both lanes run in this process over one real ModelHost serving the tiny model (ONNX Runtime, the
real batcher); requests are driven at the ASGI boundary so the two answers can be compared byte
for byte: status, headers and body.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from litestar.enums import ScopeType
from litestar.types import Receive, ReceiveMessage, Scope, Send

from bert_api.app import ROUTES, create_app
from bert_api.disconnect import CancelOnDisconnect
from bert_api.fast_lane import FastLane, lane_routes
from bert_api.guards import header_check
from bert_api.limits import RequestLimits
from bert_api.metrics import ServiceMetrics
from bert_api.model_host import ModelHost
from bert_api.request_metrics import RequestMetrics
from bert_api.settings import Settings
from bert_runtime.testutil.models import TINY_BERT_CLS

JSON = {"content-type": "application/json"}
ASGI = Callable[..., Awaitable[None]]


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class Request:
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    # Send the body in pieces, without Content-Length (as a chunked upload arrives).
    chunked: bool = False


async def call(app: ASGI, request: Request) -> Answer:
    headers = [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    if not request.chunked:
        headers.append((b"content-length", str(len(request.body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": request.path,
        "raw_path": request.path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    pieces = [request.body[i : i + 7] for i in range(0, len(request.body), 7)] or [b""]
    if not request.chunked:
        pieces = [request.body]
    messages = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    finished = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await finished.wait()
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            finished.set()

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(start["status"], sorted(start["headers"]), body)


class ColdApp:
    """Litestar behind a recorder: how many requests reached it, and the bodies it read."""

    def __init__(self, app: ASGI) -> None:
        self.app: ASGI = app
        self.calls = 0
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        self.calls += 1
        chunks: list[bytes] = []

        async def recording() -> ReceiveMessage:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    self.bodies.append(b"".join(chunks))
            return message

        await self.app(scope, recording, send)


@dataclass
class Lanes:
    fast: ASGI
    litestar_only: ASGI
    cold: ColdApp


def lanes(settings: Settings, host: ModelHost) -> Lanes:
    """The served app with its fast lane, and the same Litestar app without one, on `host`."""
    cold = ColdApp(create_app(settings, host=host))
    limits = RequestLimits(settings.max_items_per_request, settings.max_chars_per_item)
    lane = FastLane(cold, lane_routes(ROUTES), host, limits, header_check(settings.api_key))
    litestar_only = RequestMetrics(
        CancelOnDisconnect(create_app(settings, host=host)), host.metrics
    )
    return Lanes(RequestMetrics(CancelOnDisconnect(lane), host.metrics), litestar_only, cold)


def run_with_host(settings: Settings, test: Callable[[Lanes], Awaitable[None]]) -> None:
    async def main() -> None:
        host = ModelHost(settings, ServiceMetrics(settings.served_model_name))
        host.start()
        for _ in range(600):
            if host.status.value == "ready":
                break
            await asyncio.sleep(0.1)
        assert host.status.value == "ready", host.error
        try:
            await test(lanes(settings, host))
        finally:
            await host.close()

    asyncio.run(main())


def settings_for(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(
        model_name=str(TINY_BERT_CLS),
        model_cache_dir=str(tmp_path),
        huge_pages=False,
        max_items_per_request=4,
        max_chars_per_item=200,
        max_body_bytes=4096,
        **changes,
    )


def body(value: object) -> bytes:
    return json.dumps(value).encode()


# Requests the fast lane answers itself (well-formed, plain headers).
TAKEN = [
    Request("/embed", body({"inputs": "hello world"})),
    Request("/embed", body({"inputs": ["hello", "the quick brown fox", ""]})),
    Request("/embed", body({"inputs": ["a", "b"], "pooling": "cls", "normalize": False})),
    Request("/embed", body({"inputs": "hello"}), {**JSON, "X-Request-Timeout": "2.5"}),
    Request("/embed", body({"inputs": "x " * 100, "truncate": False})),  # 422: too long
    Request("/embed", body({"inputs": ["a"] * 5})),  # 422: over the item limit
    Request("/embed", body({"inputs": "a" * 201})),  # 422: over the character limit
    Request("/embed", body({"inputs": "hello", "prompt_name": "nope"})),  # 422: no such prompt
    Request("/v1/embeddings", body({"input": ["hello", "world"]})),
    Request("/v1/embeddings", body({"input": "hello", "encoding_format": "base64"})),
    Request("/v1/embeddings", body({"input": "hello", "model": "other"})),  # 404
    Request("/classify", body({"inputs": ["good", "bad"]})),
    Request("/classify", body({"pairs": [["a", "b"]]})),
    Request("/classify", body({"inputs": ["a"], "pairs": [["a", "b"]]})),  # 422: both
    Request("/tokenize", body({"inputs": "hello world"})),
    Request("/fill-mask", body({"inputs": "hello [MASK]"})),  # 422: no masked-LM head
    Request("/embed", body({"inputs": "hi"}), {"Content-Type": "text/plain"}),  # 415
]

# Requests the fast lane leaves to Litestar, whole.
LEFT = [
    Request("/embed", b"{not json"),  # 400
    Request("/embed", body({"inputs": []})),  # 422 from the schema
    Request("/embed", body({"inputs": "hi", "truncate": 0})),  # strict: 0 is not a bool
    Request("/embed", body({"inputs": "hello there"}), chunked=True),  # no Content-Length
    Request("/embed", body({"inputs": "a" * 5000})),  # 413: over MAX_BODY_BYTES
    Request("/embed", body({"inputs": "hello"}), {**JSON, "X-Request-Timeout": "1e1"}),
    Request("/embed", body({"inputs": "hello"}), {**JSON, "X-Request-Timeout": "0"}),  # 400
    Request("/embed", body({"inputs": "hello"}), {**JSON, "X-Request-Timeout": "9999"}),  # 400
    Request("/embed", b"\xff\xfe"),  # 400: not UTF-8
]


def test_the_lanes_answer_alike_and_the_fast_lane_takes_plain_requests(tmp_path: Path) -> None:
    async def test(lanes: Lanes) -> None:
        for request in TAKEN + LEFT:
            calls, read = lanes.cold.calls, len(lanes.cold.bodies)
            fast = await call(lanes.fast, request)
            slow = await call(lanes.litestar_only, request)
            where = f"{request.path} {request.body[:60]!r} {request.headers}"
            assert (fast.status, fast.headers, fast.body) == (
                slow.status,
                slow.headers,
                slow.body,
            ), where
            if request in LEFT:
                assert lanes.cold.calls == calls + 1, where
                # Whole, as sent (Litestar refuses an over-long body by its Content-Length).
                assert lanes.cold.bodies[read:] in ([request.body], []), where
            else:
                assert lanes.cold.calls == calls, f"Litestar answered {where}"

    run_with_host(settings_for(tmp_path), test)


def test_the_fast_lane_checks_the_api_key(tmp_path: Path) -> None:
    good = Request("/embed", body({"inputs": "hi"}), {**JSON, "Authorization": "Bearer s3cret"})
    wrong = Request("/embed", body({"inputs": "hi"}), {**JSON, "Authorization": "Bearer nope"})
    missing = Request("/embed", body({"inputs": "hi"}))

    async def test(lanes: Lanes) -> None:
        answers = [await call(lanes.fast, r) for r in (good, wrong, missing)]
        assert [a.status for a in answers] == [200, 401, 401]
        assert (b"www-authenticate", b'Bearer realm="bert-serve"') in answers[1].headers
        for request in (good, wrong, missing):
            slow = await call(lanes.litestar_only, request)
            fast = await call(lanes.fast, request)
            assert (fast.status, fast.headers, fast.body) == (slow.status, slow.headers, slow.body)
        assert lanes.cold.calls == 0

    run_with_host(settings_for(tmp_path, api_key="s3cret"), test)


def test_the_fast_lane_answers_with_the_models_vectors(tmp_path: Path) -> None:
    request = Request("/v1/embeddings", body({"input": "hello", "encoding_format": "base64"}))
    floats = Request("/embed", body({"inputs": "hello"}))

    async def test(lanes: Lanes) -> None:
        packed = json.loads((await call(lanes.fast, request)).body)["data"][0]["embedding"]
        vector = json.loads((await call(lanes.fast, floats)).body)["embeddings"][0]
        import numpy as np

        unpacked = np.frombuffer(base64.b64decode(packed), "<f4")
        assert np.allclose(unpacked, vector, atol=1e-7) and len(vector) == 32
        assert lanes.cold.calls == 0

    run_with_host(settings_for(tmp_path), test)


@pytest.mark.parametrize("path", ["/embed", "/v1/embeddings", "/classify", "/rerank", "/tokenize"])
def test_every_plain_task_route_is_in_the_lane(path: str) -> None:
    assert path in lane_routes(ROUTES)


def test_routes_with_path_parameters_stay_with_litestar() -> None:
    assert not [path for path in lane_routes(ROUTES) if "{" in path]
    assert "/v1/models/{model_name:str}:predict" not in lane_routes(ROUTES)
