"""Route guards: JSON content type and the optional bearer API key."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from bert_api.errors import ApiError


def require_json(connection: Connection, handler: BaseRouteHandler) -> None:
    content_type = connection.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(
            415, f"expected Content-Type application/json, got {content_type or 'none'!r}"
        )


Connection = ASGIConnection[Any, Any, Any, Any]


def require_api_key(connection: Connection, handler: BaseRouteHandler) -> None:
    expected: str = connection.app.state.settings.api_key
    if not expected:
        return
    scheme, _sep, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError(401, "missing or wrong API key (Authorization: Bearer <key>)")
