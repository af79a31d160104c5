"""OpenAI-compatible embeddings: POST /v1/embeddings."""

from __future__ import annotations

import base64
from typing import Annotated, Literal

import msgspec

from bert_api.errors import ApiError
from bert_api.routes_common import Inference, inference_route
from bert_api.task_schemas import Texts
from bert_runtime.serving.task_inputs import EmbedOptions


class OpenAIEmbeddingsBody(msgspec.Struct):
    """OpenAI's /v1/embeddings request; token-array inputs are not supported."""

    input: Texts
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    # Keep the first this many dimensions (normalized again when the model normalizes), as
    # OpenAI's shortened embeddings; meaningful for Matryoshka-trained models.
    dimensions: Annotated[int, msgspec.Meta(ge=1)] | None = None
    user: str | None = None


class OpenAIEmbedding(msgspec.Struct, kw_only=True):
    object: Literal["embedding"] = "embedding"
    index: int
    # Floats, or with encoding_format base64 the little-endian float32 bytes in base64.
    embedding: list[float] | str


class OpenAIUsage(msgspec.Struct):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingsResponse(msgspec.Struct, kw_only=True):
    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: OpenAIUsage


@inference_route("/v1/embeddings", "openai", "OpenAI-compatible embeddings", OpenAIEmbeddingsBody)
async def openai_embeddings(
    data: OpenAIEmbeddingsBody,
    inference: Inference,
) -> OpenAIEmbeddingsResponse:
    if data.model not in (None, inference.served_model):
        raise ApiError(
            404, f"unknown model {data.model!r} (this server serves {inference.served_model!r})"
        )
    texts = inference.limits.texts(data.input, "input")
    found = await inference.service.embed(
        texts, EmbedOptions(dimensions=data.dimensions), inference.deadline
    )
    rows: list[list[float] | str]
    if data.encoding_format == "base64":
        rows = [base64.b64encode(row.astype("<f4").tobytes()).decode() for row in found.vectors]
    else:
        rows = found.vectors.tolist()
    return OpenAIEmbeddingsResponse(
        data=[OpenAIEmbedding(index=i, embedding=row) for i, row in enumerate(rows)],
        model=inference.served_model,
        usage=OpenAIUsage(found.tokens, found.tokens),
    )


OPENAI_ROUTES = [openai_embeddings]
