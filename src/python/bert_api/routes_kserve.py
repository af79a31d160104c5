"""KServe V1 predict: POST /v1/models/<name>:predict."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Response, route

from bert_api.errors import ApiError
from bert_api.inference_parameters import inference_parameters
from bert_api.routes_common import Inference, inference_route
from bert_api.task_schemas import (
    ClassificationJson,
    MaskCandidateJson,
    classification_json,
    mask_fill_json,
)


class KServeInstance(msgspec.Struct):
    """One text, or a sentence pair (`text_pair`, as in transformers' pipelines) for classify."""

    text: str
    text_pair: str | None = None


class KServeV1Body(msgspec.Struct):
    """KServe V1 predict: instances are texts or {"text": ...}; parameters.task picks the head."""

    instances: Annotated[list[str | KServeInstance], msgspec.Meta(min_length=1)]
    parameters: dict[str, Any] | None = None


# One answer per instance, by parameters.task: three shapes, each described on its own.
class KServeV1Embeddings(msgspec.Struct):
    predictions: list[list[float]]


class KServeV1MaskFills(msgspec.Struct):
    # Per instance, per mask token: the candidates, best first.
    predictions: list[list[list[MaskCandidateJson]]]


class KServeV1Classifications(msgspec.Struct):
    predictions: list[ClassificationJson]


KServeV1Response = KServeV1Embeddings | KServeV1MaskFills | KServeV1Classifications


@inference_route(
    "/v1/models/{model_name:str}",
    "kserve",
    "KServe V1 predict (POST /v1/models/<name>:predict)",
    KServeV1Body,
)
async def v1_predict(
    model_name: str,
    data: KServeV1Body,
    inference: Inference,
) -> KServeV1Response:
    name, _, verb = model_name.partition(":")
    if verb != "predict":
        raise ApiError(404, f"unknown verb {verb!r}: use POST /v1/models/<name>:predict")
    if name != inference.served_model:
        raise ApiError(404, f"unknown model {name!r}")
    parameters = inference_parameters(data.parameters)
    instances = [i if isinstance(i, KServeInstance) else KServeInstance(i) for i in data.instances]
    if not any(i.text_pair is not None for i in instances):
        texts = inference.limits.texts([i.text for i in instances], "instances")
        if parameters.task == "fill-mask":
            filled = await inference.service.fill_mask(texts, parameters.top_k, inference.deadline)
            return KServeV1MaskFills([mask_fill_json(result) for result in filled.results])
        if parameters.task == "classify":
            found = await inference.service.classify(texts, None, inference.deadline)
            return KServeV1Classifications([classification_json(r) for r in found.results])
        embedded = await inference.service.embed(
            texts, parameters.embed_options(), inference.deadline
        )
        return KServeV1Embeddings(embedded.vectors.tolist())
    if parameters.task != "classify":
        raise ApiError(422, f"text_pair needs parameters.task classify, not {parameters.task}")
    # An instance without a pair is one text: its pair's second text is empty.
    sides = ("text", "text_pair")
    pairs = inference.limits.pairs(
        [(i.text, i.text_pair or "") for i in instances],
        "instances",
        lambda i, side: f"instances[{i}].{sides[side]}",
    )
    found = await inference.service.classify_pairs(pairs, None, inference.deadline)
    return KServeV1Classifications([classification_json(result) for result in found.results])


@route("/v1/models/{model_name:str}", http_method=["OPTIONS"], include_in_schema=False)
async def v1_model_options(model_name: str) -> Response[None]:
    """
    This path answers GET (metadata) and POST (predict). Litestar 2.25 builds a path's OPTIONS
    answer when the path's first handler is registered and keeps it when a second method joins
    (routes/http.py), so its Allow would leave out POST; registered first, this one is used.
    """
    return Response(None, status_code=204, headers={"Allow": "GET, OPTIONS, POST"})


# The OPTIONS handler first: see its docstring.
KSERVE_ROUTES = [v1_model_options, v1_predict]
