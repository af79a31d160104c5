"""
Request bodies of the inference routes (msgspec Structs: validated on decode, shown in OpenAPI).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

TopK = Annotated[int, msgspec.Meta(ge=1, le=100)]
# One text or a non-empty list of texts; upper limits on counts and lengths come from the settings.
Texts = str | Annotated[list[str], msgspec.Meta(min_length=1)]
# Text Embeddings Inference spells the direction "Right" / "Left".
TruncationDirection = Literal["right", "left", "Right", "Left"]


class TruncationFields(msgspec.Struct, kw_only=True):
    """
    Text Embeddings Inference's per-request truncation: `truncate` true cuts texts over the
    maximum sequence length, false rejects them with 422, left out the server's TRUNCATION decides;
    `truncation_direction` says which end is cut.
    """

    truncate: bool | None = None
    truncation_direction: TruncationDirection = "right"


class EmbedBody(TruncationFields):
    """Pooling and normalization left out (or null) are the model's own (GET /v1/models/<name>)."""

    inputs: Texts
    pooling: Literal["mean", "cls"] | None = None
    normalize: bool | None = None
    # One of the model's prompts (GET /v1/models/<name>), put in front of every text; left out,
    # the model's default prompt if it has one.
    prompt_name: str | None = None


class FillMaskBody(msgspec.Struct):
    inputs: Texts
    top_k: TopK = 5


class TextsBody(msgspec.Struct):
    inputs: Texts


class ClassifyBody(TruncationFields):
    """Texts (`inputs`) or sentence pairs (`pairs`: [[first, second], ...]), exactly one of them."""

    inputs: Texts | None = None
    pairs: Annotated[list[tuple[str, str]], msgspec.Meta(min_length=1)] | None = None


class RerankBody(TruncationFields):
    """
    Text Embeddings Inference's /rerank request: texts scored against a query by a cross-encoder.
    """

    query: str
    texts: Annotated[list[str], msgspec.Meta(min_length=1)]
    # The logit instead of its sigmoid.
    raw_scores: bool = False
    return_text: bool = False


class OpenAIEmbeddingsBody(msgspec.Struct):
    """OpenAI's /v1/embeddings request; token-array inputs are not supported."""

    input: Texts
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    # Keep the first this many dimensions (normalized again when the model normalizes), as
    # OpenAI's shortened embeddings; meaningful for Matryoshka-trained models.
    dimensions: Annotated[int, msgspec.Meta(ge=1)] | None = None
    user: str | None = None


class KServeInstance(msgspec.Struct):
    """One text, or a sentence pair (`text_pair`, as in transformers' pipelines) for classify."""

    text: str
    text_pair: str | None = None


class KServeV1Body(msgspec.Struct):
    """KServe V1 predict: instances are texts or {"text": ...}; parameters.task picks the head."""

    instances: list[str | KServeInstance]
    parameters: dict[str, Any] | None = None


class V2Tensor(msgspec.Struct):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class V2RequestedOutput(msgspec.Struct):
    name: str


class V2InferBody(msgspec.Struct):
    """Open Inference Protocol request: one BYTES input of texts."""

    inputs: list[V2Tensor]
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[V2RequestedOutput] | None = None
