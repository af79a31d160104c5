"""One JSON error shape for every failure: {"error": {"type": ..., "message": ...}}.

The runtime raises typed errors; this module alone decides their HTTP status.
"""

from __future__ import annotations

import logging
import math
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


def error_response(
    status: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> Response[dict[str, dict[str, str]]]:
    body = {"error": {"type": error_type, "message": message}}
    # JSON even where the route would answer another type (the docs pages' HTML).
    return Response(
        content=body, status_code=status, headers=headers or {}, media_type=MediaType.JSON
    )


def handle_http_exception(
    request: AnyRequest, exc: HTTPException
) -> Response[dict[str, dict[str, str]]]:
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.error_type, exc.detail, exc.headers)
    if isinstance(exc, ValidationException):
        problems = exc.extra if isinstance(exc.extra, list) else []
        if problems:
            # Well-formed JSON whose content does not fit the schema.
            message = "; ".join(
                f"{p.get('key', 'body')}: {p.get('message', 'invalid')}"
                for p in problems
                if isinstance(p, dict)
            )
            return error_response(
                HTTP_422_UNPROCESSABLE_ENTITY, "invalid_input", message or exc.detail
            )
        return error_response(
            HTTP_400_BAD_REQUEST, "invalid_json", f"malformed JSON body: {exc.detail}"
        )
    if exc.status_code >= 500:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(
        exc.status_code, ERROR_TYPE_BY_STATUS.get(exc.status_code, "error"), exc.detail, exc.headers
    )


def handle_body_validation(
    request: AnyRequest, exc: msgspec.ValidationError
) -> Response[dict[str, dict[str, str]]]:
    """Well-formed JSON whose content does not fit the route's schema: name the field."""
    # msgspec says "Expected `bool | null`, got `int` - at `$.truncate`".
    problem, separator, where = str(exc).rpartition(" - at `$")
    field = where.rstrip("`").lstrip(".") if separator else ""
    message = f"{field}: {problem}" if field else str(exc)
    return error_response(HTTP_422_UNPROCESSABLE_ENTITY, "invalid_input", message)


def handle_malformed_json(
    request: AnyRequest, exc: msgspec.DecodeError | RecursionError
) -> Response[dict[str, dict[str, str]]]:
    """
    Bodies that are not JSON, or nested deeper than the decoder's recursion limit (about 900
    levels: msgspec raises RecursionError, which no route's schema needs anywhere near).
    """
    if isinstance(exc, RecursionError):
        message = "request JSON is nested too deeply"
    else:
        message = f"malformed JSON body: {exc}"
    return error_response(HTTP_400_BAD_REQUEST, "invalid_json", message)


def handle_bad_encoding(
    request: AnyRequest, exc: UnicodeDecodeError
) -> Response[dict[str, dict[str, str]]]:
    return error_response(HTTP_400_BAD_REQUEST, "invalid_json", "request body is not valid UTF-8")


def handle_runtime_error(
    request: AnyRequest, exc: BertRuntimeError
) -> Response[dict[str, dict[str, str]]]:
    if isinstance(exc, Overloaded):
        retry = str(max(1, math.ceil(exc.retry_after_s)))
        return error_response(
            HTTP_429_TOO_MANY_REQUESTS, "overloaded", str(exc), {"Retry-After": retry}
        )
    if isinstance(exc, ShuttingDown):
        # Connection: close, so a client holding a kept-alive connection to a draining server
        # opens its next one elsewhere instead of being reset when the server exits.
        return error_response(
            HTTP_503_SERVICE_UNAVAILABLE,
            "unavailable",
            str(exc),
            {"Retry-After": "5", "Connection": "close"},
        )
    if isinstance(exc, InputError):
        return error_response(HTTP_422_UNPROCESSABLE_ENTITY, "invalid_input", str(exc))
    logger.exception("runtime error", exc_info=exc)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "inference failed")


def handle_unexpected(request: AnyRequest, exc: Exception) -> Response[dict[str, dict[str, str]]]:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal error")


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
