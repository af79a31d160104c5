"""What every inference route shares: its decorator (guards, errors) and the injected service.

Routes reach the model only through Litestar's dependency injection: `service` (the model's
InferenceService while it is ready, else 503), `limits` (the request limits), `served_model` (the
served name) and `deadline` (when the request's texts must start, from the client's own budget or
the server's default).
"""

from __future__ import annotations

from typing import Annotated

from litestar import post
from litestar.di import Provide
from litestar.params import Parameter

from bert_api.errors import INFERENCE_ERRORS
from bert_api.guards import INFERENCE
from bert_api.limits import RequestLimits
from bert_api.model_host import ModelHost
from bert_api.strict_body import StrictJson
from bert_runtime.config import Truncation, TruncationPolicy, TruncationSide

# The client's time budget, in seconds (float): texts that cannot start within it are refused at
# once (429) instead of answered after the client has given up.
TIMEOUT_HEADER = "X-Request-Timeout"


def inference_route(path: str, tag: str, summary: str, body: type) -> post:
    """
    A POST inference route taking `body` (decoded strictly): the app's JSON and API-key guards
    apply, its errors are documented.
    """
    return post(
        path,
        dto=StrictJson[body],  # type: ignore[valid-type]
        return_dto=None,
        opt={INFERENCE: True},
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
        le=3600,
        description="Seconds this client will wait: texts that cannot start within it are "
        "refused at once with 429 and Retry-After (default: the server's MAX_QUEUE_WAIT_MS).",
    ),
]


def dependencies(host: ModelHost, limits: RequestLimits, served_model: str) -> dict[str, Provide]:
    """The values routes declare as parameters, bound to this app's model and settings."""

    def provide_deadline(budget: BudgetHeader = None) -> float | None:
        return host.deadline(budget)

    return {
        "service": Provide(host.service, sync_to_thread=False),
        "limits": Provide(lambda: limits, sync_to_thread=False),
        "served_model": Provide(lambda: served_model, sync_to_thread=False),
        "deadline": Provide(provide_deadline, sync_to_thread=False),
    }


def truncation(truncate: bool | None, direction: str) -> Truncation | None:
    """Text Embeddings Inference's `truncate` / `truncation_direction`; None: the server's."""
    side = TruncationSide(direction.lower())
    if truncate is None and side is TruncationSide.RIGHT:
        return None
    policy = None
    if truncate is not None:
        policy = TruncationPolicy.TRUNCATE if truncate else TruncationPolicy.REJECT
    return Truncation(policy, side)
