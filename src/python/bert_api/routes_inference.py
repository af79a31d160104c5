"""Inference routes: simple task routes, OpenAI embeddings, KServe V1 predict, Open Inference V2."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import numpy as np
from litestar import post
from litestar.datastructures import State

from bert_api.errors import INFERENCE_ERRORS, ApiError
from bert_api.guards import require_api_key, require_json
from bert_api.model_service import ModelService
from bert_api.schemas import (
    ClassifyBody,
    EmbedBody,
    FillMaskBody,
    KServeInstance,
    KServeV1Body,
    OpenAIEmbeddingsBody,
    RerankBody,
    Texts,
    TextsBody,
    TruncationFields,
    V2InferBody,
    V2Tensor,
)
from bert_runtime.config import Pooling, Truncation, TruncationPolicy, TruncationSide
from bert_runtime.serving.tasks import (
    Classification,
    ClassifyRequest,
    Embedding,
    EmbedRequest,
    FillMaskRequest,
    FillMaskResult,
    TaskRequest,
    TaskResult,
    l2_normalized,
)

TASKS = ("embed", "fill-mask", "classify")


def inference_route(path: str, tag: str, summary: str) -> post:
    """A POST route with the JSON and API-key guards and the documented error responses."""
    return post(
        path,
        guards=[require_json, require_api_key],
        responses=INFERENCE_ERRORS,
        tags=[tag],
        summary=summary,
        status_code=200,
    )


def _check_count(state: State, count: int, field: str) -> None:
    if not count:
        raise ApiError(422, f"{field} is empty: send at least one text")
    limit = state.settings.max_items_per_request
    if count > limit:
        raise ApiError(422, f"{field} has {count} items, more than the limit of {limit}")


def _check_length(state: State, text: str, where: str) -> None:
    limit = state.settings.max_chars_per_item
    if len(text) > limit:
        raise ApiError(422, f"{where} has {len(text)} characters, more than the limit of {limit}")


def _texts(state: State, inputs: Texts, field: str = "inputs") -> list[str]:
    """Inputs as a list, within the configured limits."""
    texts = [inputs] if isinstance(inputs, str) else inputs
    _check_count(state, len(texts), field)
    for index, text in enumerate(texts):
        _check_length(state, text, f"{field}[{index}]")
    return texts


def _pairs(
    state: State,
    pairs: list[tuple[str, str]],
    field: str = "pairs",
    where: Callable[[int, int], str] = lambda index, side: f"pairs[{index}][{side}]",
) -> list[tuple[str, str]]:
    """
    Sentence pairs within the limits of the texts: one item per pair, each text checked (and
    named in errors by `where(pair index, 0 or 1)`).
    """
    _check_count(state, len(pairs), field)
    for index, pair in enumerate(pairs):
        for side, text in enumerate(pair):
            _check_length(state, text, where(index, side))
    return pairs


def _truncation(body: TruncationFields) -> Truncation | None:
    """The request's own truncation, or None for the server's."""
    side = TruncationSide(body.truncation_direction.lower())
    if body.truncate is None and side is TruncationSide.RIGHT:
        return None
    policy = None
    if body.truncate is not None:
        policy = TruncationPolicy.TRUNCATE if body.truncate else TruncationPolicy.REJECT
    return Truncation(policy, side)


async def _run(
    state: State,
    texts: list[str],
    request: TaskRequest,
    truncation: Truncation | None = None,
    prompt_name: str | None = None,
) -> list[TaskResult]:
    service: ModelService = state.service
    return await service.run(texts, request, truncation, prompt_name)


def _embedding_rows(results: list[TaskResult]) -> list[Embedding]:
    return [r for r in results if isinstance(r, Embedding)]


def _fill_mask_json(result: TaskResult) -> list[list[dict[str, Any]]]:
    assert isinstance(result, FillMaskResult)
    return [
        [{"token": c.token, "token_id": c.token_id, "score": c.score} for c in candidates]
        for candidates in result.masks
    ]


def _classification_json(result: TaskResult) -> dict[str, Any]:
    assert isinstance(result, Classification)
    return {
        "label": result.label,
        "score": result.score,
        "scores": result.scores,
        "logits": result.logits,
    }


def _usage(results: list[TaskResult]) -> int:
    return sum(r.num_tokens for r in results)


@inference_route("/embed", "tasks", "Sentence embeddings")
async def embed(state: State, data: EmbedBody) -> dict[str, Any]:
    texts = _texts(state, data.inputs)
    pooling = Pooling(data.pooling) if data.pooling else None
    request = EmbedRequest(pooling, data.normalize)
    results = await _run(state, texts, request, _truncation(data), data.prompt_name)
    rows = _embedding_rows(results)
    return {
        "model": state.settings.served_model_name,
        "embeddings": [row.vector.tolist() for row in rows],
        "dimensions": int(rows[0].vector.shape[0]),
        "usage": {"tokens": _usage(results)},
    }


@inference_route("/fill-mask", "tasks", "Top-k tokens for each mask token")
async def fill_mask(state: State, data: FillMaskBody) -> dict[str, Any]:
    results = await _run(state, _texts(state, data.inputs), FillMaskRequest(data.top_k))
    return {
        "model": state.settings.served_model_name,
        "predictions": [_fill_mask_json(r) for r in results],
        "usage": {"tokens": _usage(results)},
    }


@inference_route("/classify", "tasks", "Sequence classification of texts or sentence pairs")
async def classify(state: State, data: ClassifyBody) -> dict[str, Any]:
    service: ModelService = state.service
    truncation = _truncation(data)
    if data.pairs is not None and data.inputs is None:
        results = await service.run_pairs(_pairs(state, data.pairs), truncation)
    elif data.inputs is not None and data.pairs is None:
        results = await _run(state, _texts(state, data.inputs), ClassifyRequest(), truncation)
    else:
        raise ApiError(422, "send exactly one of inputs (texts) and pairs ([first, second] each)")
    return {
        "model": state.settings.served_model_name,
        "predictions": [_classification_json(r) for r in results],
        "usage": {"tokens": _usage(results)},
    }


@inference_route("/rerank", "tasks", "Texts ranked against a query (a cross-encoder; as in TEI)")
async def rerank(state: State, data: RerankBody) -> list[dict[str, Any]]:
    service: ModelService = state.service
    engine = service.engine
    if engine is not None and engine.num_labels != 1:
        raise ApiError(
            422,
            f"/rerank needs a cross-encoder (a classification head with one label); this model "
            f"has {engine.num_labels}: use /classify with pairs",
        )
    if engine is not None and not engine.supports_rerank:
        # One label, but from a graph that scored it with softmax: every text would rank 1.0.
        raise ApiError(
            422, "this model directory was prepared by an older bert_runtime: prepare it again"
        )
    _check_length(state, data.query, "query")
    texts = _texts(state, data.texts, "texts")
    results = await service.run_pairs([(data.query, text) for text in texts], _truncation(data))
    ranked: list[dict[str, Any]] = []
    for index, result in enumerate(results):
        assert isinstance(result, Classification)
        row: dict[str, Any] = {
            "index": index,
            "score": next(iter(result.logits.values())) if data.raw_scores else result.score,
        }
        if data.return_text:
            row["text"] = texts[index]
        ranked.append(row)
    ranked.sort(key=lambda row: -row["score"])  # best first; a stable sort keeps ties in order
    return ranked


@inference_route("/tokenize", "tasks", "Token ids and strings")
async def tokenize(state: State, data: TextsBody) -> dict[str, Any]:
    service: ModelService = state.service
    sequences = service.encode(_texts(state, data.inputs))
    assert service.engine is not None
    tokenizer = service.engine.tokenizer
    return {
        "model": state.settings.served_model_name,
        "tokens": [{"ids": s.tolist(), "tokens": tokenizer.token_strings(s)} for s in sequences],
    }


def _shortened(vector: np.ndarray, dimensions: int | None, normalized: bool) -> np.ndarray:
    """The first `dimensions` values, back to unit length when the full vector was."""
    if dimensions is None or dimensions == vector.shape[0]:
        return vector
    cut = vector[:dimensions]
    return l2_normalized(cut) if normalized else cut


@inference_route("/v1/embeddings", "openai", "OpenAI-compatible embeddings")
async def openai_embeddings(state: State, data: OpenAIEmbeddingsBody) -> dict[str, Any]:
    name = state.settings.served_model_name
    if data.model not in (None, name):
        raise ApiError(404, f"unknown model {data.model!r} (this server serves {name!r})")
    service: ModelService = state.service
    width = service.engine.manifest.embedding_size if service.engine is not None else None
    if data.dimensions is not None and width is not None and data.dimensions > width:
        raise ApiError(422, f"dimensions is {data.dimensions}, more than the model's {width}")
    results = await _run(state, _texts(state, data.input, "input"), EmbedRequest())
    assert service.engine is not None  # it answered
    normalized = service.engine.manifest.normalize
    rows = []
    for index, row in enumerate(_embedding_rows(results)):
        values = _shortened(row.vector, data.dimensions, normalized)
        vector: Any = values.tolist()
        if data.encoding_format == "base64":
            vector = base64.b64encode(values.astype("<f4").tobytes()).decode()
        rows.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = _usage(results)
    return {
        "object": "list",
        "data": rows,
        "model": name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _task_request(parameters: dict[str, Any] | None) -> tuple[str, TaskRequest, str | None]:
    """
    KServe / V2 `parameters`: task (embed | fill-mask | classify), pooling, normalize, top_k, and
    for embed prompt_name (as /embed's; None: the model's default prompt).
    """
    parameters = parameters or {}
    task = parameters.get("task", "embed")
    if task not in TASKS:
        raise ApiError(422, f"parameters.task must be one of {', '.join(TASKS)}, got {task!r}")
    if task != "embed" and "prompt_name" in parameters:
        raise ApiError(422, "parameters.prompt_name is for task embed")
    if task == "fill-mask":
        top_k = parameters.get("top_k", 5)
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= 100:
            raise ApiError(422, "parameters.top_k must be an integer from 1 to 100")
        return task, FillMaskRequest(top_k), None
    if task == "classify":
        return task, ClassifyRequest(), None
    # Absent (or null): the model's own default.
    pooling = parameters.get("pooling")
    if pooling not in (None, "mean", "cls"):
        raise ApiError(422, f"parameters.pooling must be mean or cls, got {pooling!r}")
    normalize = parameters.get("normalize")
    if normalize is not None and not isinstance(normalize, bool):
        raise ApiError(422, "parameters.normalize must be a boolean")
    prompt_name = parameters.get("prompt_name")
    if prompt_name is not None and not isinstance(prompt_name, str):
        raise ApiError(422, "parameters.prompt_name must be a string")
    return task, EmbedRequest(Pooling(pooling) if pooling else None, normalize), prompt_name


def _prediction(task: str, result: TaskResult) -> Any:
    if task == "fill-mask":
        return _fill_mask_json(result)
    if task == "classify":
        return _classification_json(result)
    assert isinstance(result, Embedding)
    return result.vector.tolist()


@inference_route(
    "/v1/models/{model_name:str}", "kserve", "KServe V1 predict (POST /v1/models/<name>:predict)"
)
async def v1_predict(state: State, model_name: str, data: KServeV1Body) -> dict[str, Any]:
    name, _, verb = model_name.partition(":")
    if verb != "predict":
        raise ApiError(404, f"unknown verb {verb!r}: use POST /v1/models/<name>:predict")
    if name != state.settings.served_model_name:
        raise ApiError(404, f"unknown model {name!r}")
    task, request, prompt_name = _task_request(data.parameters)
    instances = [i if isinstance(i, KServeInstance) else KServeInstance(i) for i in data.instances]
    if not any(i.text_pair is not None for i in instances):
        texts = _texts(state, [i.text for i in instances], "instances")
        results = await _run(state, texts, request, None, prompt_name)
    elif task != "classify":
        raise ApiError(422, f"text_pair needs parameters.task classify, not {task}")
    else:
        # An instance without a pair is one text: its pair's second text is empty.
        pairs = [(i.text, i.text_pair or "") for i in instances]
        service: ModelService = state.service
        sides = ("text", "text_pair")
        checked = _pairs(state, pairs, "instances", lambda i, side: f"instances[{i}].{sides[side]}")
        results = await service.run_pairs(checked)
    return {"predictions": [_prediction(task, r) for r in results]}


@inference_route("/v2/models/{model_name:str}/infer", "v2", "Open Inference Protocol infer")
async def v2_infer(state: State, model_name: str, data: V2InferBody) -> dict[str, Any]:
    if model_name != state.settings.served_model_name:
        raise ApiError(404, f"unknown model {model_name!r}")
    if not 1 <= len(data.inputs) <= 2 or any(t.datatype != "BYTES" for t in data.inputs):
        raise ApiError(
            422,
            "send one input tensor of datatype BYTES holding the texts (and, for classify, a "
            "second one named text_pair holding the second text of each pair)",
        )
    for tensor in data.inputs:
        if not all(isinstance(t, str) for t in tensor.data):
            raise ApiError(422, f"input {tensor.name!r}: every element of data must be a string")
        if int(np.prod(tensor.shape)) != len(tensor.data):
            raise ApiError(
                422,
                f"input {tensor.name!r}: shape {tensor.shape} does not match "
                f"{len(tensor.data)} elements",
            )
    task, request, prompt_name = _task_request(data.parameters)
    texts, *second = data.inputs
    if not second:
        checked = _texts(state, texts.data, "inputs[0].data")
        results = await _run(state, checked, request, None, prompt_name)
    else:
        results = await _v2_pairs(state, task, texts, second[0])
    body: dict[str, Any] = {"model_name": model_name, "model_version": "1"}
    if data.id is not None:
        body["id"] = data.id
    if task == "embed":
        vectors = np.stack([r.vector for r in _embedding_rows(results)])
        body["outputs"] = [
            {
                "name": "embedding",
                "datatype": "FP32",
                "shape": list(vectors.shape),
                "data": vectors.ravel().tolist(),
            }
        ]
    else:
        body["outputs"] = [
            {
                "name": task,
                "datatype": "BYTES",
                "shape": [len(results)],
                "data": [_prediction(task, r) for r in results],
            }
        ]
    return body


async def _v2_pairs(
    state: State, task: str, texts: V2Tensor, text_pair: V2Tensor
) -> list[TaskResult]:
    """Classify the pairs of two V2 input tensors, element by element."""
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
    pairs = list(zip(texts.data, text_pair.data, strict=True))
    service: ModelService = state.service
    checked = _pairs(state, pairs, "inputs[0].data", lambda i, side: f"inputs[{side}].data[{i}]")
    return await service.run_pairs(checked)


INFERENCE_ROUTES = [
    embed,
    fill_mask,
    classify,
    rerank,
    tokenize,
    openai_embeddings,
    v1_predict,
    v2_infer,
]
