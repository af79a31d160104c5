"""What the batcher needs from whoever runs its batches, and what it reports to its owner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from bert_runtime.serving.planner import BatchPlanner
from bert_runtime.serving.tasks import AnyResult, TaskRequest

R = TypeVar("R", bound=AnyResult)


class BatchRunner(Protocol):
    """What runs a batch: an Engine in production, anything with the same shape in tests."""

    @property
    def planner(self) -> BatchPlanner:
        ...

    def run(self, sequences: Sequence[np.ndarray], requests: Sequence[TaskRequest[R]]) -> list[R]:
        ...


@dataclass(frozen=True)
class BatchStats:
    """One executed batch, for metrics."""

    size: int
    real_tokens: int
    padded_tokens: int
    max_queue_wait_s: float
    run_s: float
    failed: bool


class DropReason:
    """Why texts left the queue without running (the `reason` label of the drop metric)."""

    DEADLINE = "deadline"
    CANCELLED = "cancelled"
