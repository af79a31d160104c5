"""The smallest ASGI app: host_path_bench serves it with the service's uvicorn to show the HTTP
server's own floor, beside the framework's (`GET /health`)."""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import Receive, Scope, Send

_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"2")]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != ScopeType.HTTP:
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": b"{}", "more_body": False})
