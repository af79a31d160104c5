"""Route guards: JSON content type and the optional bearer API key."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from bert_api.errors import ApiError

# Route handlers with this `opt` key are inference routes: the app-wide guards apply to them only.
INFERENCE = "inference"


def require_json(connection: Connection, handler: BaseRouteHandler) -> None:
    if not handler.opt.get(INFERENCE):
        return
    content_type = connection.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(
            415, f"expected Content-Type application/json, got {content_type or 'none'!r}"
        )


Connection = ASGIConnection[Any, Any, Any, Any]


def require_api_key(expected: str) -> Callable[[Connection, BaseRouteHandler], None]:
    """
    A guard demanding `Authorization: Bearer <expected>` on inference routes (health, metadata
    and metrics stay open); none when `expected` is empty.
    """

    def guard(connection: Connection, handler: BaseRouteHandler) -> None:
        if not expected or not handler.opt.get(INFERENCE):
            return
        scheme, _sep, token = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
            raise ApiError(401, "missing or wrong API key (Authorization: Bearer <key>)")

    return guard
