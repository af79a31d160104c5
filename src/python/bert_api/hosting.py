"""What the routes and the server need from whoever holds the model: the `Host` protocol.

Two hold it: ModelHost (model_host.py) runs the engine and its batch queue in this process;
WorkerHost (worker_host.py), in a front-end worker, reaches the engine process over a socket.
Routes, health checks and the draining server see only this.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, runtime_checkable

from bert_api.metrics import ServiceMetrics
from bert_api.settings import Settings
from bert_runtime.errors import ShuttingDown
from bert_runtime.serving.service import InferenceService


class Status(StrEnum):
    LOADING = "loading"
    READY = "ready"
    DRAINING = "draining"
    FAILED = "failed"


DRAINING_MESSAGE = "the server is shutting down: retry on another replica"


def ready_service(status: Status, service: InferenceService | None) -> InferenceService:
    """`service` while the host is ready; ShuttingDown (503) saying why not otherwise."""
    if status is not Status.READY or service is None:
        if status is Status.DRAINING:
            raise ShuttingDown(DRAINING_MESSAGE)
        raise ShuttingDown(f"the model is not ready ({status.value})")
    return service


# runtime_checkable: Litestar checks injected values against the parameter's type.
@runtime_checkable
class Host(Protocol):
    settings: Settings
    metrics: ServiceMetrics
    status: Status
    error: str | None

    def start(self) -> None:
        """Begin loading (or reaching) the model, in the background."""

    async def close(self) -> None:
        """Refuse new work and finish what is queued."""

    def service(self) -> InferenceService:
        """The model's service while it is ready; ShuttingDown (503) otherwise."""
        ...

    def deadline(self, budget_s: float | None) -> float | None:
        """The deadline `budget_s` seconds from now on the batch queue's clock (None: default)."""
        ...

    def begin_drain(self) -> None:
        """Refuse new work (503, readiness red); work already taken goes on."""

    @property
    def idle(self) -> bool:
        """No work of this host's waiting or running."""
        ...

    def abort_queued(self) -> None:
        """Answer the work still queued 503 (a shutdown out of time)."""
