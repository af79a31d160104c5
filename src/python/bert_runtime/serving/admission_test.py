"""Admission by time: work that would not start before its deadline is refused at once, and work
whose deadline passes while it waits is dropped before it reaches the model.

The model's speed is what the batcher measured; the clock is a ManualClock the test moves, and a
runner holds batches at a gate, so nothing here waits on real time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import pytest

from bert_runtime.config import BatcherConfig, EngineConfig
from bert_runtime.errors import BudgetTooShortError, DeadlineExceeded, InputError, Overloaded
from bert_runtime.serving.admission import QueueEstimate
from bert_runtime.serving.batch_protocol import DropReason
from bert_runtime.serving.batcher import Batcher
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.tasks import AnyResult, EmbedRequest, TaskRequest
from bert_runtime.testutil.clock import ManualClock
from bert_runtime.testutil.models import prepared_model

R = TypeVar("R", bound=AnyResult)
EMBED = EmbedRequest()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return Engine(
        prepared_model(tmp_path_factory.mktemp("models"), "tiny-bert"),
        EngineConfig(max_sequence_length=32, max_batch_size=1),
    )


class TimedRunner:
    """The engine, one text per batch, taking `seconds_per_batch` on the ManualClock per batch."""

    def __init__(self, engine: Engine, clock: ManualClock, seconds_per_batch: float) -> None:
        self.engine = engine
        self.planner = engine.planner
        self.clock = clock
        self.seconds_per_batch = seconds_per_batch
        self.gate = threading.Event()
        self.gate.set()
        self.ran: list[int] = []

    def run(self, sequences: Sequence[np.ndarray], requests: Sequence[TaskRequest[R]]) -> list[R]:
        self.gate.wait(timeout=30)
        self.ran.append(len(sequences))
        self.clock.advance(self.seconds_per_batch)  # the model's time, on the test's clock
        return self.engine.run(sequences, requests)


def test_the_estimate_is_the_running_batchs_rest_plus_the_queued_tokens_at_the_measured_speed() -> (
    None
):
    estimate = QueueEstimate(smoothing=0.5)
    assert estimate.wait_s(1000, now=0.0) == 0.0, "nothing measured: nothing refused for time"
    estimate.batch_started(100, now=0.0)
    estimate.batch_finished(100, elapsed=1.0)  # 10 ms per token
    assert estimate.wait_s(50, now=5.0) == pytest.approx(0.5)
    estimate.batch_started(100, now=10.0)  # expected to run until 11.0
    assert estimate.wait_s(50, now=10.25) == pytest.approx(0.75 + 0.5)
    estimate.batch_finished(100, elapsed=3.0)  # 30 ms per token, smoothed: 20 ms
    assert estimate.wait_s(50, now=20.0) == pytest.approx(1.0)


def test_work_that_would_not_start_in_time_is_refused_at_once_with_an_honest_retry(
    engine: Engine,
) -> None:
    (text,) = engine.tokenizer.encode(["hello world"])  # 4 tokens
    tokens = len(text)

    async def main() -> tuple[Overloaded, float]:
        clock = ManualClock()
        runner = TimedRunner(engine, clock, seconds_per_batch=0.1)
        config = BatcherConfig(max_queue_delay_ms=0, max_queue_wait_ms=10_000)
        async with Batcher(runner, config, clock=clock) as batcher:
            await batcher.submit(text, EMBED)  # measured: 0.1 s per 4 tokens
            runner.gate.clear()
            held = asyncio.ensure_future(batcher.submit(text, EMBED))
            queued = [asyncio.ensure_future(batcher.submit(text, EMBED)) for _ in range(9)]
            for _ in range(20):
                await asyncio.sleep(0)
            expected = batcher.expected_wait_s()
            # 9 queued texts (0.9 s) and the running one's 0.1 s, then its own 0.1 s: the answer
            # would come after 1.1 s, so a 0.5 s budget cannot be met.
            with pytest.raises(Overloaded, match="longer than this request's budget") as refused:
                await batcher.submit(text, EMBED, deadline=clock.now() + 0.5)
            runner.gate.set()
            await asyncio.gather(held, *queued)
            return refused.value, expected

    refused, expected = asyncio.run(main())
    assert expected == pytest.approx(1.0)
    assert refused.retry_after_s == pytest.approx(0.6), "retry once the queue has drained enough"
    assert tokens == 4


def test_texts_whose_own_work_outlasts_the_callers_budget_are_refused_as_input(
    engine: Engine,
) -> None:
    texts = engine.tokenizer.encode(["hello world"] * 8)  # 8 x 4 tokens

    async def main() -> BudgetTooShortError:
        clock = ManualClock()
        runner = TimedRunner(engine, clock, seconds_per_batch=0.1)
        config = BatcherConfig(max_queue_delay_ms=0)
        async with Batcher(runner, config, clock=clock) as batcher:
            await batcher.submit(texts[0], EMBED)  # measured: 25 ms per token
            with pytest.raises(BudgetTooShortError) as refused:
                await batcher.submit_many(texts, [EMBED] * 8, deadline=clock.now() + 0.5)
            # An idle server, and even so 32 tokens need 0.8 s: not overload, so no 429.
            assert not isinstance(refused.value, Overloaded)
            assert isinstance(refused.value, InputError)
            # Within the budget they run.
            await batcher.submit_many(texts[:4], [EMBED] * 4, deadline=clock.now() + 0.5)
            return refused.value

    refused = asyncio.run(main())
    assert refused.work_s == pytest.approx(0.8)
    assert "X-Request-Timeout" in str(refused) and "0.80s" in str(refused)


def test_texts_whose_deadline_passes_while_waiting_are_dropped_not_run(engine: Engine) -> None:
    short, *late = engine.tokenizer.encode(["held", "late one", "late two", "in time"])
    drops: list[tuple[str, int]] = []

    async def main() -> tuple[object, list[int], int]:
        clock = ManualClock()
        runner = TimedRunner(engine, clock, seconds_per_batch=2.0)
        config = BatcherConfig(max_queue_delay_ms=0, max_queue_wait_ms=60_000)
        async with Batcher(runner, config, clock=clock, on_drop=lambda *d: drops.append(d)) as b:
            runner.gate.clear()
            held = asyncio.ensure_future(b.submit(short, EMBED))
            for _ in range(20):
                await asyncio.sleep(0)
            # Nothing measured yet, so nothing is refused; the request's budget is 1 s.
            doomed = asyncio.ensure_future(
                b.submit_many(late[:2], [EMBED, EMBED], deadline=clock.now() + 1.0)
            )
            patient = asyncio.ensure_future(b.submit(late[2], EMBED))
            for _ in range(20):
                await asyncio.sleep(0)
            runner.gate.set()  # the held batch takes 2 s: the doomed request's budget runs out
            (outcome,) = await asyncio.gather(doomed, return_exceptions=True)
            await asyncio.gather(held, patient)
            return outcome, runner.ran, b.queue_depth

    outcome, ran, depth = asyncio.run(main())
    assert isinstance(outcome, DeadlineExceeded) and isinstance(outcome, Overloaded)
    assert ran == [1, 1], "a late text reached the model"
    assert drops == [(DropReason.DEADLINE, 2)]
    assert depth == 0


def test_a_submission_that_has_started_is_not_dropped_for_time(engine: Engine) -> None:
    """Under overload a half-done request is finished, not thrown away with its work."""
    texts = engine.tokenizer.encode(["one", "two", "three"])
    drops: list[tuple[str, int]] = []

    async def main() -> tuple[int, list[int]]:
        clock = ManualClock()
        runner = TimedRunner(engine, clock, seconds_per_batch=2.0)  # one text per batch
        config = BatcherConfig(max_queue_delay_ms=0)
        async with Batcher(runner, config, clock=clock, on_drop=lambda *d: drops.append(d)) as b:
            # Its budget (1 s) runs out while the first text runs (2 s): the rest still run.
            results = await b.submit_many(texts, [EMBED] * 3, deadline=clock.now() + 1.0)
            return len(results), runner.ran

    delivered, ran = asyncio.run(main())
    assert delivered == 3 and ran == [1, 1, 1]
    assert drops == []


def test_the_engines_warm_up_speed_refuses_work_before_any_batch_has_run(engine: Engine) -> None:
    (text,) = engine.tokenizer.encode(["hello world"])  # 4 tokens

    async def main() -> Overloaded:
        clock = ManualClock()
        runner = TimedRunner(engine, clock, seconds_per_batch=0.0)
        runner.gate.clear()
        config = BatcherConfig(max_queue_delay_ms=0)
        # 0.1 s per token, as an engine's warm-up would have measured it.
        async with Batcher(runner, config, clock=clock, seconds_per_token=0.1) as batcher:
            queued = [asyncio.ensure_future(batcher.submit(text, EMBED)) for _ in range(5)]
            for _ in range(20):
                await asyncio.sleep(0)
            with pytest.raises(Overloaded) as refused:
                await batcher.submit(text, EMBED, deadline=clock.now() + 1.0)
            runner.gate.set()
            await asyncio.gather(*queued)
            return refused.value

    assert asyncio.run(main()).retry_after_s > 0
