"""Request bodies decoded strictly, in one pass, into the route's msgspec Struct.

Litestar converts JSON bodies with msgspec's `strict=False` (for form and query data), so a body
with `"truncate": 0` would pass as false and `"top_k": "5"` as 5. This DTO decodes the raw bytes
straight into the route's Struct with msgspec's strict JSON rules (and in one pass instead of
decode-then-convert); the OpenAPI schema stays the Struct's own.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar.dto import MsgspecDTO
from litestar.typing import FieldDefinition

T = TypeVar("T", bound=msgspec.Struct)


class StrictJson(MsgspecDTO[T]):
    """A route's `data`: the body as the Struct `T`; msgspec's errors reach the error handlers."""

    def decode_bytes(self, value: bytes) -> Any:
        return msgspec.json.decode(value, type=self.model_type)

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: Any
    ) -> Any:
        return schema_creator.for_field_definition(FieldDefinition.from_annotation(cls.model_type))
