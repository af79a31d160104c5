"""The inference routes' guard: JSON content type and the optional bearer API key.

One async guard for the whole app: Litestar runs a sync guard on a worker thread and copies the
route handler for every guard it calls, both per request; this one returns at once for routes that
are not inference routes (health, metadata and metrics stay open).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from bert_api.errors import ApiError

# Route handlers with this `opt` key are inference routes: the guard applies to them only.
INFERENCE = "inference"

Connection = ASGIConnection[Any, Any, Any, Any]
Guard = Callable[[Connection, BaseRouteHandler], Awaitable[None]]


HeaderCheck = Callable[[str, str], None]


def header_check(api_key: str) -> HeaderCheck:
    """
    A check of an inference request's Content-Type and Authorization values: application/json,
    and `Bearer <api_key>` when a key is set; ApiError (415, 401) otherwise.
    """
    expected = api_key.encode()

    def check(content_type: str, authorization: str) -> None:
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise ApiError(
                415, f"expected Content-Type application/json, got {content_type or 'none'!r}"
            )
        if not expected:
            return
        scheme, _sep, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected):
            raise ApiError(401, "missing or wrong API key (Authorization: Bearer <key>)")

    return check


def inference_guard(api_key: str) -> Guard:
    """The app's guard: `header_check` on inference routes, nothing on the others."""
    check = header_check(api_key)

    async def guard(connection: Connection, handler: BaseRouteHandler) -> None:
        if not handler.opt.get(INFERENCE):
            return
        headers = connection.headers
        check(headers.get("content-type", ""), headers.get("authorization", ""))

    return guard
