"""What every inference route shares: its decorator (guards, errors) and the injected service.

Routes reach the model only through Litestar's dependency injection: inference routes get one
`Inference` (the model's service while it is ready, else 503; the request limits; the served name;
the request's deadline), health and metadata routes the `host`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar import post
from litestar.di import Provide
from litestar.params import Parameter

from bert_api.errors import INFERENCE_ERRORS
from bert_api.guards import INFERENCE
from bert_api.hosting import Host
from bert_api.limits import RequestLimits
from bert_api.strict_body import StrictJson
from bert_runtime.config import Truncation, TruncationPolicy, TruncationSide
from bert_runtime.serving.service import InferenceService

# The client's time budget, in seconds (float): texts that cannot start within it are refused at
# once (429) instead of answered after the client has given up.
TIMEOUT_HEADER = "X-Request-Timeout"
# Its largest value (seconds); it must be more than 0.
MAX_BUDGET_S = 3600
# The route handler's `opt` key naming its body's Struct (for the fast lane, fast_lane.py).
BODY = "body"


def inference_route(path: str, tag: str, summary: str, body: type) -> post:
    """
    A POST inference route taking `body` (decoded strictly): the app's JSON and API-key guards
    apply, its errors are documented.
    """
    return post(
        path,
        dto=StrictJson[body],  # type: ignore[valid-type]
        return_dto=None,
        opt={INFERENCE: True, BODY: body},
        responses=INFERENCE_ERRORS,
        tags=[tag],
        summary=summary,
        status_code=200,
    )


BudgetHeader = Annotated[
    float | None,
    Parameter(
        header=TIMEOUT_HEADER,
        required=False,
        gt=0,
        le=MAX_BUDGET_S,
        description="Seconds this client will wait: texts that cannot start within it are "
        "refused at once with 429 and Retry-After (default: the server's MAX_QUEUE_WAIT_MS).",
    ),
]


@dataclass(frozen=True)
class Inference:
    """What an inference route needs, injected as one value (one dependency: Litestar resolves
    several independent ones concurrently, in a task group per request)."""

    # The model's service while it is ready (else the provider raised: 503).
    service: InferenceService
    limits: RequestLimits
    # The model's name in URLs and answers (SERVED_MODEL_NAME).
    served_model: str
    # When the request's texts must start (the client's X-Request-Timeout, else the server's).
    deadline: float | None


def dependencies(host: Host, limits: RequestLimits) -> dict[str, Provide]:
    """The values routes declare as parameters, bound to this app's model and settings."""

    def provide_inference(budget: BudgetHeader = None) -> Inference:
        return inference_for(host, limits, budget)

    return {
        "host": Provide(lambda: host, sync_to_thread=False),
        "inference": Provide(provide_inference, sync_to_thread=False),
    }


def inference_for(host: Host, limits: RequestLimits, budget_s: float | None) -> Inference:
    """What a route gets: the ready service (ShuttingDown while not), limits, name and deadline."""
    return Inference(
        host.service(), limits, host.settings.served_model_name, host.deadline(budget_s)
    )


def truncation(truncate: bool | None, direction: str) -> Truncation | None:
    """Text Embeddings Inference's `truncate` / `truncation_direction`; None: the server's."""
    side = TruncationSide(direction.lower())
    if truncate is None and side is TruncationSide.RIGHT:
        return None
    policy = None
    if truncate is not None:
        policy = TruncationPolicy.TRUNCATE if truncate else TruncationPolicy.REJECT
    return Truncation(policy, side)
