"""KServe V1 and Open Inference Protocol V2 `parameters`: which task, and its options.

Both protocols carry free-form parameters; they are decoded here once, into a typed task and
options, with the same limits as the task routes' own fields.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from bert_api.errors import ApiError
from bert_api.task_schemas import TopK
from bert_runtime.config import Pooling
from bert_runtime.serving.task_inputs import EmbedOptions

Task = Literal["embed", "fill-mask", "classify"]


class InferenceParameters(msgspec.Struct, forbid_unknown_fields=False):
    """task (embed | fill-mask | classify), top_k for fill-mask, and for embed pooling,
    normalize and prompt_name (as /embed's; left out: the model's own)."""

    task: Task = "embed"
    top_k: TopK = 5
    pooling: Literal["mean", "cls"] | None = None
    normalize: bool | None = None
    prompt_name: str | None = None

    def embed_options(self) -> EmbedOptions:
        return EmbedOptions(
            pooling=Pooling(self.pooling) if self.pooling else None,
            normalize=self.normalize,
            prompt_name=self.prompt_name,
        )


def inference_parameters(raw: dict[str, Any] | None) -> InferenceParameters:
    """The request's parameters, typed; a wrong one is 422 naming it."""
    try:
        parameters = msgspec.convert(raw or {}, InferenceParameters)
    except msgspec.ValidationError as error:
        # msgspec says "Expected `str`, got `int` - at `$.prompt_name`".
        problem, _, where = str(error).rpartition(" - at `$.")
        field = where.rstrip("`") if problem else ""
        message = f"parameters.{field}: {problem}" if field else f"parameters: {error}"
        raise ApiError(422, message) from None
    if parameters.task != "embed" and parameters.prompt_name is not None:
        raise ApiError(422, "parameters.prompt_name is for task embed")
    return parameters
