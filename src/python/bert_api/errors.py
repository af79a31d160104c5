"""One JSON error shape for every failure: {"error": {"type": ..., "message": ...}}.

The runtime raises typed errors; this module alone decides their HTTP status.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from bert_runtime.errors import BertRuntimeError, InputError, Overloaded, ShuttingDown

logger = logging.getLogger(__name__)
AnyRequest = Request[Any, Any, Any]

# HTTP status -> error type: the `type` of error bodies and of inference_errors_total.
ERROR_TYPE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "overloaded",
    # Never sent (the client has gone): recorded when a client leaves before its answer.
    499: "client_closed",
    503: "unavailable",
}


# RFC 9110 §11.6.1: a 401 names the scheme the client should use.
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="bert-serve"'}


class ApiError(HTTPException):
    """An HTTP error with our error type name."""

    def __init__(self, status_code: int, message: str, error_type: str | None = None) -> None:
        super().__init__(
            status_code=status_code,
            detail=message,
            headers=CHALLENGE if status_code == 401 else None,
        )
        self.error_type = error_type or ERROR_TYPE_BY_STATUS.get(status_code, "error")


@dataclass(frozen=True)
class ErrorAnswer:
    """What an error is answered: status, our error type, the message and extra headers."""

    status: int
    type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        return msgspec.json.encode({"error": {"type": self.type, "message": self.message}})


def error_response(
    status: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> Response[dict[str, dict[str, str]]]:
    body = {"error": {"type": error_type, "message": message}}
    # JSON even where the route would answer another type (the docs pages' HTML).
    return Response(
        content=body, status_code=status, headers=headers or {}, media_type=MediaType.JSON
    )


def error_answer(exc: BaseException, where: str) -> ErrorAnswer:
    """
    The answer to `exc`, raised while serving `where` ("POST /embed", named in the log of a
    server error). The one mapping from exceptions to answers: Litestar's exception handlers
    (below) and the fast lane (fast_lane.py) both use it.
    """
    if isinstance(exc, HTTPException):
        return _http_exception_answer(exc, where)
    if isinstance(exc, BertRuntimeError):
        return _runtime_error_answer(exc)
    if isinstance(exc, UnicodeDecodeError):
        return ErrorAnswer(HTTP_400_BAD_REQUEST, "invalid_json", "request body is not valid UTF-8")
    if isinstance(exc, msgspec.ValidationError):
        # Well-formed JSON whose content does not fit the route's schema: name the field.
        # msgspec says "Expected `bool | null`, got `int` - at `$.truncate`".
        problem, separator, at = str(exc).rpartition(" - at `$")
        name = at.rstrip("`").lstrip(".") if separator else ""
        message = f"{name}: {problem}" if name else str(exc)
        return ErrorAnswer(HTTP_422_UNPROCESSABLE_ENTITY, "invalid_input", message)
    if isinstance(exc, RecursionError):
        # Nested deeper than the decoder's recursion limit (about 900 levels: msgspec raises
        # RecursionError), which no route's schema needs anywhere near.
        return ErrorAnswer(
            HTTP_400_BAD_REQUEST, "invalid_json", "request JSON is nested too deeply"
        )
    if isinstance(exc, msgspec.DecodeError):
        return ErrorAnswer(HTTP_400_BAD_REQUEST, "invalid_json", f"malformed JSON body: {exc}")
    logger.exception("unhandled error on %s", where, exc_info=exc)
    return ErrorAnswer(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal error")


def _http_exception_answer(exc: HTTPException, where: str) -> ErrorAnswer:
    headers = dict(exc.headers or {})
    if isinstance(exc, ApiError):
        return ErrorAnswer(exc.status_code, exc.error_type, exc.detail, headers)
    if isinstance(exc, ValidationException):
        problems = exc.extra if isinstance(exc.extra, list) else []
        if problems:
            # Well-formed JSON whose content does not fit the schema.
            message = "; ".join(
                f"{p.get('key', 'body')}: {p.get('message', 'invalid')}"
                for p in problems
                if isinstance(p, dict)
            )
            return ErrorAnswer(
                HTTP_422_UNPROCESSABLE_ENTITY, "invalid_input", message or exc.detail
            )
        return ErrorAnswer(
            HTTP_400_BAD_REQUEST, "invalid_json", f"malformed JSON body: {exc.detail}"
        )
    if exc.status_code >= 500:
        logger.error("%s failed", where, exc_info=exc)
    error_type = ERROR_TYPE_BY_STATUS.get(exc.status_code, "error")
    return ErrorAnswer(exc.status_code, error_type, exc.detail, headers)


def _runtime_error_answer(exc: BertRuntimeError) -> ErrorAnswer:
    if isinstance(exc, Overloaded):
        retry = str(max(1, math.ceil(exc.retry_after_s)))
        return ErrorAnswer(
            HTTP_429_TOO_MANY_REQUESTS, "overloaded", str(exc), {"Retry-After": retry}
        )
    if isinstance(exc, ShuttingDown):
        # Connection: close, so a client holding a kept-alive connection to a draining server
        # opens its next one elsewhere instead of being reset when the server exits.
        headers = {"Retry-After": "5", "Connection": "close"}
        return ErrorAnswer(HTTP_503_SERVICE_UNAVAILABLE, "unavailable", str(exc), headers)
    if isinstance(exc, InputError):
        return ErrorAnswer(HTTP_422_UNPROCESSABLE_ENTITY, "invalid_input", str(exc))
    logger.exception("runtime error", exc_info=exc)
    return ErrorAnswer(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "inference failed")


def handle_error(request: AnyRequest, exc: Exception) -> Response[dict[str, dict[str, str]]]:
    """Litestar's exception handler for every type the app maps (app.py)."""
    answer = error_answer(exc, f"{request.method} {request.url.path}")
    return error_response(answer.status, answer.type, answer.message, answer.headers)


class ErrorDetail(msgspec.Struct):
    type: str
    message: str


class ErrorBody(msgspec.Struct):
    """The body of every error response."""

    error: ErrorDetail


_DESCRIPTIONS = {
    400: "Malformed JSON or invalid UTF-8",
    401: "Missing or wrong API key",
    404: "Unknown model",
    413: "Request body too large",
    415: "Content-Type is not application/json",
    422: "Well-formed request the model cannot serve (types, limits, task)",
    429: "Queue full: retry after the Retry-After header's seconds",
    503: "Model not ready (loading) or draining",
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses a route can answer."""
    return {
        code: ResponseSpec(
            data_container=ErrorBody, description=_DESCRIPTIONS[code], generate_examples=False
        )
        for code in codes
    }


INFERENCE_ERRORS = error_responses(400, 401, 404, 413, 415, 422, 429, 503)
