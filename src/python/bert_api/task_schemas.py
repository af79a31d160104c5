"""Request and response bodies of the task routes (/embed, /fill-mask, /classify, /rerank,
/tokenize): msgspec Structs, validated on decode and described in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from bert_runtime.serving.tasks import MAX_TOP_K, Classification, FillMaskResult

TopK = Annotated[int, msgspec.Meta(ge=1, le=MAX_TOP_K)]
# One text or a non-empty list of texts; upper limits on counts and lengths come from the settings.
# The outer Meta puts minItems in the OpenAPI schema (Litestar drops the union member's own).
Texts = Annotated[
    str | Annotated[list[str], msgspec.Meta(min_length=1)],
    msgspec.Meta(extra_json_schema={"extra": {"minItems": 1}}),
]
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


# --- responses ------------------------------------------------------------------------------------
class Usage(msgspec.Struct):
    tokens: int


class EmbedResponse(msgspec.Struct):
    model: str
    embeddings: list[list[float]]
    dimensions: int
    usage: Usage


class MaskCandidateJson(msgspec.Struct):
    token: str
    token_id: int
    score: float


class FillMaskResponse(msgspec.Struct):
    model: str
    # Per text, per mask token: the candidates, best first.
    predictions: list[list[list[MaskCandidateJson]]]
    usage: Usage


class ClassificationJson(msgspec.Struct):
    label: str
    score: float
    scores: dict[str, float]
    logits: dict[str, float]


class ClassifyResponse(msgspec.Struct):
    model: str
    predictions: list[ClassificationJson]
    usage: Usage


class RankedTextJson(msgspec.Struct, omit_defaults=True):
    index: int
    score: float
    # Only with return_text.
    text: str | None = None


class TokenizedTextJson(msgspec.Struct):
    ids: list[int]
    tokens: list[str]


class TokenizeResponse(msgspec.Struct):
    model: str
    tokens: list[TokenizedTextJson]


def classification_json(result: Classification) -> ClassificationJson:
    return ClassificationJson(result.label, result.score, result.scores, result.logits)


def mask_fill_json(result: FillMaskResult) -> list[list[MaskCandidateJson]]:
    """Per mask token of one text, its candidates, best first."""
    return [
        [MaskCandidateJson(c.token, c.token_id, c.score) for c in candidates]
        for candidates in result.masks
    ]
