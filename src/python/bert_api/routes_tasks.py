"""The task routes: /embed, /fill-mask, /classify, /rerank and /tokenize.

Each decodes its body (task_schemas), checks the request limits, calls the model's typed
InferenceService and shapes the answer; the model itself is the service's business.
"""

from __future__ import annotations

from bert_api.errors import ApiError
from bert_api.routes_common import Inference, inference_route, truncation
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
from bert_runtime.serving.task_inputs import EmbedOptions


@inference_route("/embed", "tasks", "Sentence embeddings", EmbedBody)
async def embed(
    data: EmbedBody,
    inference: Inference,
) -> EmbedResponse:
    options = EmbedOptions(
        pooling=Pooling(data.pooling) if data.pooling else None,
        normalize=data.normalize,
        prompt_name=data.prompt_name,
        truncation=truncation(data.truncate, data.truncation_direction),
    )
    found = await inference.service.embed(
        inference.limits.texts(data.inputs), options, inference.deadline
    )
    return EmbedResponse(
        inference.served_model,
        found.vectors.tolist(),
        int(found.vectors.shape[1]),
        Usage(found.tokens),
    )


@inference_route("/fill-mask", "tasks", "Top-k tokens for each mask token", FillMaskBody)
async def fill_mask(
    data: FillMaskBody,
    inference: Inference,
) -> FillMaskResponse:
    found = await inference.service.fill_mask(
        inference.limits.texts(data.inputs), data.top_k, inference.deadline
    )
    predictions = [mask_fill_json(result) for result in found.results]
    return FillMaskResponse(inference.served_model, predictions, Usage(found.tokens))


@inference_route(
    "/classify", "tasks", "Sequence classification of texts or sentence pairs", ClassifyBody
)
async def classify(
    data: ClassifyBody,
    inference: Inference,
) -> ClassifyResponse:
    cut = truncation(data.truncate, data.truncation_direction)
    if data.pairs is not None and data.inputs is None:
        found = await inference.service.classify_pairs(
            inference.limits.pairs(data.pairs), cut, inference.deadline
        )
    elif data.inputs is not None and data.pairs is None:
        found = await inference.service.classify(
            inference.limits.texts(data.inputs), cut, inference.deadline
        )
    else:
        raise ApiError(422, "send exactly one of inputs (texts) and pairs ([first, second] each)")
    predictions = [classification_json(result) for result in found.results]
    return ClassifyResponse(inference.served_model, predictions, Usage(found.tokens))


@inference_route(
    "/rerank", "tasks", "Texts ranked against a query (a cross-encoder; as in TEI)", RerankBody
)
async def rerank(
    data: RerankBody,
    inference: Inference,
) -> list[RankedTextJson]:
    inference.limits.length(data.query, "query")
    texts = inference.limits.texts(data.texts, "texts")
    cut = truncation(data.truncate, data.truncation_direction)
    found = await inference.service.rerank(
        data.query, texts, cut, data.raw_scores, inference.deadline
    )
    return [
        RankedTextJson(row.index, row.score, texts[row.index] if data.return_text else None)
        for row in found.ranked
    ]


@inference_route("/tokenize", "tasks", "Token ids and strings", TextsBody)
async def tokenize(data: TextsBody, inference: Inference) -> TokenizeResponse:
    found = await inference.service.tokenize(inference.limits.texts(data.inputs))
    return TokenizeResponse(
        inference.served_model, [TokenizedTextJson(text.ids, text.tokens) for text in found]
    )


TASK_ROUTES = [embed, fill_mask, classify, rerank, tokenize]
