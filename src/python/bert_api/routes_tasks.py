"""The task routes: /embed, /fill-mask, /classify, /rerank and /tokenize.

Each decodes its body (task_schemas), checks the request limits, calls the model's typed
InferenceService and shapes the answer; the model itself is the service's business.
"""

from __future__ import annotations

from bert_api.errors import ApiError
from bert_api.limits import RequestLimits
from bert_api.routes_common import inference_route, truncation
from bert_api.task_schemas import (
    ClassifyBody,
    ClassifyResponse,
    EmbedBody,
    EmbedResponse,
    FillMaskBody,
    FillMaskResponse,
    RankedTextJson,
    RerankBody,
    TextsBody,
    TokenizedTextJson,
    TokenizeResponse,
    Usage,
    classification_json,
    mask_fill_json,
)
from bert_runtime.config import Pooling
from bert_runtime.serving.service import InferenceService
from bert_runtime.serving.task_inputs import EmbedOptions


@inference_route("/embed", "tasks", "Sentence embeddings", EmbedBody)
async def embed(
    served_model: str,
    data: EmbedBody,
    service: InferenceService,
    limits: RequestLimits,
    deadline: float | None,
) -> EmbedResponse:
    options = EmbedOptions(
        pooling=Pooling(data.pooling) if data.pooling else None,
        normalize=data.normalize,
        prompt_name=data.prompt_name,
        truncation=truncation(data.truncate, data.truncation_direction),
    )
    found = await service.embed(limits.texts(data.inputs), options, deadline)
    return EmbedResponse(
        served_model, found.vectors.tolist(), int(found.vectors.shape[1]), Usage(found.tokens)
    )


@inference_route("/fill-mask", "tasks", "Top-k tokens for each mask token", FillMaskBody)
async def fill_mask(
    served_model: str,
    data: FillMaskBody,
    service: InferenceService,
    limits: RequestLimits,
    deadline: float | None,
) -> FillMaskResponse:
    found = await service.fill_mask(limits.texts(data.inputs), data.top_k, deadline)
    predictions = [mask_fill_json(result) for result in found.results]
    return FillMaskResponse(served_model, predictions, Usage(found.tokens))


@inference_route(
    "/classify", "tasks", "Sequence classification of texts or sentence pairs", ClassifyBody
)
async def classify(
    served_model: str,
    data: ClassifyBody,
    service: InferenceService,
    limits: RequestLimits,
    deadline: float | None,
) -> ClassifyResponse:
    cut = truncation(data.truncate, data.truncation_direction)
    if data.pairs is not None and data.inputs is None:
        found = await service.classify_pairs(limits.pairs(data.pairs), cut, deadline)
    elif data.inputs is not None and data.pairs is None:
        found = await service.classify(limits.texts(data.inputs), cut, deadline)
    else:
        raise ApiError(422, "send exactly one of inputs (texts) and pairs ([first, second] each)")
    predictions = [classification_json(result) for result in found.results]
    return ClassifyResponse(served_model, predictions, Usage(found.tokens))


@inference_route(
    "/rerank", "tasks", "Texts ranked against a query (a cross-encoder; as in TEI)", RerankBody
)
async def rerank(
    data: RerankBody,
    service: InferenceService,
    limits: RequestLimits,
    deadline: float | None,
) -> list[RankedTextJson]:
    limits.length(data.query, "query")
    texts = limits.texts(data.texts, "texts")
    cut = truncation(data.truncate, data.truncation_direction)
    found = await service.rerank(data.query, texts, cut, data.raw_scores, deadline)
    return [
        RankedTextJson(row.index, row.score, texts[row.index] if data.return_text else None)
        for row in found.ranked
    ]


@inference_route("/tokenize", "tasks", "Token ids and strings", TextsBody)
async def tokenize(
    served_model: str, data: TextsBody, service: InferenceService, limits: RequestLimits
) -> TokenizeResponse:
    found = await service.tokenize(limits.texts(data.inputs))
    return TokenizeResponse(
        served_model, [TokenizedTextJson(text.ids, text.tokens) for text in found]
    )


TASK_ROUTES = [embed, fill_mask, classify, rerank, tokenize]
