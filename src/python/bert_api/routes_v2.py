"""Open Inference Protocol (KServe V2) infer: POST /v2/models/<name>/infer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from bert_api.errors import ApiError
from bert_api.inference_parameters import inference_parameters
from bert_api.routes_common import Inference, inference_route
from bert_api.task_schemas import (
    ClassificationJson,
    MaskCandidateJson,
    classification_json,
    mask_fill_json,
)


class V2Tensor(msgspec.Struct):
    name: str
    shape: list[int]
    datatype: str
    data: Annotated[list[Any], msgspec.Meta(min_length=1)]
    parameters: dict[str, Any] | None = None


class V2RequestedOutput(msgspec.Struct):
    name: str


class V2InferBody(msgspec.Struct):
    """Open Inference Protocol request: one BYTES input of texts (two for sentence pairs)."""

    # The texts, and for sentence pairs a second tensor named text_pair.
    inputs: Annotated[list[V2Tensor], msgspec.Meta(min_length=1, max_length=2)]
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[V2RequestedOutput] | None = None


# The output tensor, by parameters.task: embeddings as one FP32 tensor [texts, width], row-major;
# fill-mask and classify as one JSON prediction per text (a BYTES tensor).
class V2Embeddings(msgspec.Struct):
    name: Literal["embedding"]
    datatype: Literal["FP32"]
    shape: list[int]
    data: list[float]


class V2MaskFills(msgspec.Struct):
    name: Literal["fill-mask"]
    datatype: Literal["BYTES"]
    shape: list[int]
    data: list[list[list[MaskCandidateJson]]]


class V2Classifications(msgspec.Struct):
    name: Literal["classify"]
    datatype: Literal["BYTES"]
    shape: list[int]
    data: list[ClassificationJson]


class V2EmbedResponse(msgspec.Struct, omit_defaults=True):
    model_name: str
    model_version: str
    outputs: list[V2Embeddings]
    id: str | None = None


class V2FillMaskResponse(msgspec.Struct, omit_defaults=True):
    model_name: str
    model_version: str
    outputs: list[V2MaskFills]
    id: str | None = None


class V2ClassifyResponse(msgspec.Struct, omit_defaults=True):
    model_name: str
    model_version: str
    outputs: list[V2Classifications]
    id: str | None = None


V2InferResponse = V2EmbedResponse | V2FillMaskResponse | V2ClassifyResponse


def _check_tensors(inputs: list[V2Tensor]) -> None:
    if not 1 <= len(inputs) <= 2 or any(t.datatype != "BYTES" for t in inputs):
        raise ApiError(
            422,
            "send one input tensor of datatype BYTES holding the texts (and, for classify, a "
            "second one named text_pair holding the second text of each pair)",
        )
    for tensor in inputs:
        if not all(isinstance(t, str) for t in tensor.data):
            raise ApiError(422, f"input {tensor.name!r}: every element of data must be a string")
        count = 1
        for size in tensor.shape:
            count *= size
        if count != len(tensor.data):
            raise ApiError(
                422,
                f"input {tensor.name!r}: shape {tensor.shape} does not match "
                f"{len(tensor.data)} elements",
            )


@inference_route(
    "/v2/models/{model_name:str}/infer", "v2", "Open Inference Protocol infer", V2InferBody
)
async def v2_infer(
    model_name: str,
    data: V2InferBody,
    inference: Inference,
) -> V2InferResponse:
    if model_name != inference.served_model:
        raise ApiError(404, f"unknown model {model_name!r}")
    _check_tensors(data.inputs)
    parameters = inference_parameters(data.parameters)
    texts, *second = data.inputs
    if second:
        classes = await _pairs(inference, parameters.task, texts, second[0])
        output = V2Classifications("classify", "BYTES", [len(classes)], classes)
        return V2ClassifyResponse(model_name, "1", [output], data.id)
    checked = inference.limits.texts(texts.data, "inputs[0].data")
    if parameters.task == "fill-mask":
        filled = await inference.service.fill_mask(checked, parameters.top_k, inference.deadline)
        rows = [mask_fill_json(result) for result in filled.results]
        masks = V2MaskFills("fill-mask", "BYTES", [len(rows)], rows)
        return V2FillMaskResponse(model_name, "1", [masks], data.id)
    if parameters.task == "classify":
        found = await inference.service.classify(checked, None, inference.deadline)
        classes = [classification_json(result) for result in found.results]
        output = V2Classifications("classify", "BYTES", [len(classes)], classes)
        return V2ClassifyResponse(model_name, "1", [output], data.id)
    embedded = await inference.service.embed(
        checked, parameters.embed_options(), inference.deadline
    )
    vectors = embedded.vectors
    tensor = V2Embeddings("embedding", "FP32", list(vectors.shape), vectors.ravel().tolist())
    return V2EmbedResponse(model_name, "1", [tensor], data.id)


async def _pairs(
    inference: Inference, task: str, texts: V2Tensor, text_pair: V2Tensor
) -> list[ClassificationJson]:
    """Classify the pairs of two input tensors, element by element."""
    if task != "classify" or text_pair.name != "text_pair":
        raise ApiError(
            422,
            "a second input tensor must be named text_pair and needs parameters.task classify",
        )
    if len(text_pair.data) != len(texts.data):
        raise ApiError(
            422,
            f"input text_pair has {len(text_pair.data)} elements, input {texts.name!r} "
            f"{len(texts.data)}: one second text per text",
        )
    pairs = inference.limits.pairs(
        list(zip(texts.data, text_pair.data, strict=True)),
        "inputs[0].data",
        lambda i, side: f"inputs[{side}].data[{i}]",
    )
    found = await inference.service.classify_pairs(pairs, None, inference.deadline)
    return [classification_json(result) for result in found.results]


V2_ROUTES = [v2_infer]
