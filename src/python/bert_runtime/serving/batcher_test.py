"""The dynamic batcher, over a real Engine on the tiny model."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bert_runtime.config import BatcherConfig, EngineConfig, Pooling
from bert_runtime.errors import Overloaded, ShuttingDown
from bert_runtime.serving.batcher import Batcher, BatchStats
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.tasks import (
    Classification,
    ClassifyRequest,
    Embedding,
    EmbedRequest,
    TaskRequest,
    TaskResult,
)
from bert_runtime.testutil.models import prepared_model

MAX_LENGTH = 32


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return Engine(
        prepared_model(tmp_path_factory.mktemp("models"), "tiny-bert"),
        EngineConfig(max_sequence_length=MAX_LENGTH),
    )


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return Engine(prepared_model(tmp_path_factory.mktemp("cls"), "tiny-bert-cls"))


class GatedRunner:
    """The real engine behind a gate the test opens; a poison token id makes a batch fail."""

    def __init__(self, engine: Engine, poison: int | None = None) -> None:
        self.engine = engine
        self.poison = poison
        self.gate = threading.Event()
        self.gate.set()
        self.batches: list[int] = []

    def run(
        self, sequences: Sequence[np.ndarray], requests: Sequence[TaskRequest], multiple: int
    ) -> list[TaskResult]:
        self.gate.wait(timeout=30)
        self.batches.append(len(sequences))
        if self.poison is not None and any(np.any(s == self.poison) for s in sequences):
            raise RuntimeError("poisoned sequence")
        return self.engine.run(sequences, requests, multiple)


def _vector(result: TaskResult) -> np.ndarray:
    assert isinstance(result, Embedding)
    return result.vector


texts_strategy = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.just(""),
        st.text(alphabet="abcdefghij klmnop", min_size=100, max_size=300),  # over the limit
    ),
    min_size=1,
    max_size=24,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=texts_strategy, batch_size=st.integers(1, 16), pooling=st.sampled_from(Pooling))
def test_result_for_a_text_is_the_same_alone_or_in_any_batch(
    engine: Engine, texts: list[str], batch_size: int, pooling: Pooling
) -> None:
    request = EmbedRequest(pooling=pooling, normalize=True)
    sequences = engine.tokenizer.encode(texts)
    alone = [_vector(engine.run([s], [request])[0]) for s in sequences]

    async def batched() -> list[TaskResult]:
        config = BatcherConfig(max_batch_size=batch_size, max_queue_delay_ms=2)
        async with Batcher(engine, config, max_positions=64) as batcher:
            return await batcher.submit_many(sequences, request)

    together = asyncio.run(batched())
    for single, result in zip(alone, together, strict=True):
        # Identical up to float rounding: GEMM blocking may differ with the batch's shape.
        np.testing.assert_allclose(_vector(result), single, atol=2e-6, rtol=0)


def test_hundreds_of_concurrent_submissions_all_resolve_in_few_batches(engine: Engine) -> None:
    stats: list[BatchStats] = []
    texts = [f"text number {i} " + "word " * (i % 20) for i in range(600)]
    sequences = engine.tokenizer.encode(texts)

    async def main() -> list[TaskResult]:
        config = BatcherConfig(max_batch_size=32, max_batch_tokens=512, max_queue_delay_ms=5)
        async with Batcher(engine, config, max_positions=64, on_batch=stats.append) as batcher:
            return await asyncio.gather(*(batcher.submit(s, EmbedRequest()) for s in sequences))

    results = asyncio.run(main())
    assert len(results) == 600
    assert all(isinstance(r, Embedding) for r in results)
    assert sum(s.size for s in stats) == 600
    assert len(stats) < 600 / 4, "requests were not batched"
    assert all(s.size <= 32 and s.padded_tokens <= 512 for s in stats)


def test_length_grouping_keeps_padding_small(engine: Engine) -> None:
    stats: list[BatchStats] = []
    short = ["hi"] * 40
    long = ["the quick brown fox jumps over the lazy dog " * 3] * 40
    mixed = [t for pair in zip(short, long, strict=True) for t in pair]
    sequences = engine.tokenizer.encode(mixed)

    async def main() -> None:
        config = BatcherConfig(max_batch_size=10, max_queue_delay_ms=50)
        async with Batcher(engine, config, max_positions=64, on_batch=stats.append) as batcher:
            await asyncio.gather(*(batcher.submit(s, EmbedRequest()) for s in sequences))

    asyncio.run(main())
    padded = sum(s.padded_tokens for s in stats)
    real = sum(s.real_tokens for s in stats)
    # Arrival order alternates short/long; pad-to-longest in arrival order would be ~1.9x.
    assert padded / real < 1.3


def test_a_failing_item_fails_only_its_own_future(engine: Engine) -> None:
    runner = GatedRunner(engine, poison=engine.tokenizer.encode(["fox"])[0][1])
    sequences = engine.tokenizer.encode(["hello", "the fox", "world", "dog"])

    async def main() -> list[TaskResult | BaseException]:
        runner.gate.clear()
        async with Batcher(runner, BatcherConfig(max_batch_size=8), max_positions=64) as batcher:
            tasks = [asyncio.ensure_future(batcher.submit(s, EmbedRequest())) for s in sequences]
            await asyncio.sleep(0.05)
            runner.gate.set()
            return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[1], RuntimeError)
    assert [isinstance(r, Embedding) for r in results] == [True, False, True, True]
    assert runner.batches[0] == 4, "the items were not first tried as one batch"


def test_full_queue_raises_overloaded_with_retry_after(engine: Engine) -> None:
    runner = GatedRunner(engine)
    (sequence,) = engine.tokenizer.encode(["hello"])

    async def main() -> tuple[Overloaded, int]:
        runner.gate.clear()
        config = BatcherConfig(max_batch_size=1, max_queue_size=4, max_queue_delay_ms=0)
        async with Batcher(runner, config, max_positions=64) as batcher:
            first = asyncio.ensure_future(batcher.submit(sequence, EmbedRequest()))
            await asyncio.sleep(0.05)  # the first item is now running, held at the gate
            queued = [
                asyncio.ensure_future(batcher.submit(sequence, EmbedRequest())) for _ in range(4)
            ]
            await asyncio.sleep(0.01)
            with pytest.raises(Overloaded) as raised:
                await batcher.submit(sequence, EmbedRequest())
            runner.gate.set()
            done = await asyncio.gather(first, *queued)
            return raised.value, len(done)

    error, completed = asyncio.run(main())
    assert error.retry_after_s > 0
    assert error.queue_size == 4
    assert completed == 5


def test_a_rejected_request_leaves_none_of_its_texts_queued(engine: Engine) -> None:
    runner = GatedRunner(engine)
    sequences = engine.tokenizer.encode(["held", "a1", "a2", "a3", "b1", "b2", "b3"])

    async def main() -> tuple[list[TaskResult], BaseException | list[TaskResult], int]:
        runner.gate.clear()
        config = BatcherConfig(max_batch_size=8, max_queue_size=4, max_queue_delay_ms=0)
        async with Batcher(runner, config, max_positions=64) as batcher:
            held = asyncio.ensure_future(batcher.submit(sequences[0], EmbedRequest()))
            await asyncio.sleep(0.05)  # running, held at the gate; the queue is empty
            # Both requests are started before either enqueues anything.
            first = asyncio.ensure_future(batcher.submit_many(sequences[1:4], EmbedRequest()))
            second = asyncio.ensure_future(batcher.submit_many(sequences[4:7], EmbedRequest()))
            rejected = (await asyncio.gather(second, return_exceptions=True))[0]
            depth = batcher.queue_depth
            runner.gate.set()
            await held
            return await first, rejected, depth

    accepted, rejected, depth = asyncio.run(main())
    assert len(accepted) == 3
    assert isinstance(rejected, Overloaded)
    assert depth == 3, "the rejected request's texts were queued anyway"
    assert sum(runner.batches) == 4, "texts of the rejected request were run"


def test_a_failing_text_drops_the_rest_of_its_request_from_the_queue(engine: Engine) -> None:
    runner = GatedRunner(engine, poison=engine.tokenizer.encode(["fox"])[0][1])
    # Batches of one: the poisoned first text fails while the other two still wait.
    sequences = engine.tokenizer.encode(["the fox", "hello", "world"])

    async def main() -> BaseException | list[TaskResult]:
        config = BatcherConfig(max_batch_size=1, max_queue_delay_ms=0)
        async with Batcher(runner, config, max_positions=64) as batcher:
            runner.gate.clear()
            request = asyncio.ensure_future(batcher.submit_many(sequences, EmbedRequest()))
            await asyncio.sleep(0.05)
            runner.gate.set()
            return (await asyncio.gather(request, return_exceptions=True))[0]

    outcome = asyncio.run(main())
    assert isinstance(outcome, RuntimeError)
    assert runner.batches == [1], "texts of a request that had already failed were run"


def test_cancelled_submissions_free_their_queue_places_at_once(engine: Engine) -> None:
    runner = GatedRunner(engine)
    sequences = engine.tokenizer.encode([f"text {i}" for i in range(7)])

    async def main() -> tuple[int, list[TaskResult]]:
        runner.gate.clear()
        config = BatcherConfig(max_batch_size=1, max_queue_size=4, max_queue_delay_ms=0)
        async with Batcher(runner, config, max_positions=64) as batcher:
            held = asyncio.ensure_future(batcher.submit(sequences[0], EmbedRequest()))
            await asyncio.sleep(0.05)  # running, held at the gate
            queued = [
                asyncio.ensure_future(batcher.submit(s, EmbedRequest())) for s in sequences[1:5]
            ]
            await asyncio.sleep(0.01)
            for task in queued[:2]:  # two clients give up while the batch still runs
                task.cancel()
            await asyncio.sleep(0.01)
            depth = batcher.queue_depth
            # Their places are free again: two more fit without Overloaded.
            more = [
                asyncio.ensure_future(batcher.submit(s, EmbedRequest())) for s in sequences[5:7]
            ]
            await asyncio.sleep(0.01)
            runner.gate.set()
            results = await asyncio.gather(held, *queued[2:], *more)
            return depth, list(results)

    depth, results = asyncio.run(main())
    assert depth == 2
    assert len(results) == 5 and all(isinstance(r, Embedding) for r in results)


def test_cancelled_submissions_do_not_disturb_the_others(engine: Engine) -> None:
    runner = GatedRunner(engine)
    sequences = engine.tokenizer.encode([f"text {i}" for i in range(10)])

    async def main() -> tuple[list[TaskResult], int]:
        runner.gate.clear()
        async with Batcher(runner, BatcherConfig(max_batch_size=4), max_positions=64) as batcher:
            tasks = [asyncio.ensure_future(batcher.submit(s, EmbedRequest())) for s in sequences]
            await asyncio.sleep(0.05)
            for task in tasks[::2]:
                task.cancel()
            runner.gate.set()
            kept = await asyncio.gather(*tasks[1::2])
            return list(kept), batcher.queue_depth

    kept, depth = asyncio.run(main())
    assert len(kept) == 5
    assert all(isinstance(r, Embedding) for r in kept)
    assert depth == 0


def test_cancelled_submissions_do_not_count_towards_a_full_batch(engine: Engine) -> None:
    runner = GatedRunner(engine)
    sequences = engine.tokenizer.encode([f"text {i}" for i in range(6)])

    async def main() -> list[TaskResult]:
        # A long delay: only a full batch (four live texts) may start it early.
        config = BatcherConfig(max_batch_size=4, max_queue_delay_ms=2000)
        async with Batcher(runner, config, max_positions=64) as batcher:
            first, *given_up = (
                asyncio.ensure_future(batcher.submit(s, EmbedRequest())) for s in sequences[:3]
            )
            await asyncio.sleep(0.01)
            for task in given_up:
                task.cancel()
            rest = []
            for sequence in sequences[3:]:  # one at a time, so the loop looks at each count
                rest.append(asyncio.ensure_future(batcher.submit(sequence, EmbedRequest())))
                await asyncio.sleep(0.01)
            return list(await asyncio.gather(first, *rest))

    results = asyncio.run(main())
    assert len(results) == 4
    # Two cancelled texts still listed must not make two live ones look like a full batch of four.
    assert runner.batches == [4]


def test_a_batch_full_by_tokens_starts_without_waiting_out_the_delay(engine: Engine) -> None:
    """
    Long texts fill the token budget before the count: once no other text could join, the batch
    runs at once rather than after the queue delay (a minute here, so waiting fails the test).
    """
    runner = GatedRunner(engine)
    long_texts = engine.tokenizer.encode(["word " * 40, "other words " * 20])
    assert [len(s) for s in long_texts] == [MAX_LENGTH, MAX_LENGTH]

    async def main() -> list[TaskResult]:
        # Two padded 32-token texts fill 64 tokens; a third text of any length would not fit.
        config = BatcherConfig(max_batch_size=32, max_batch_tokens=64, max_queue_delay_ms=60_000)
        async with Batcher(runner, config, max_positions=MAX_LENGTH) as batcher:
            submitted = [batcher.submit(s, EmbedRequest()) for s in long_texts]
            return await asyncio.wait_for(asyncio.gather(*submitted), timeout=10)

    assert len(asyncio.run(main())) == 2
    assert runner.batches == [2]


def test_a_batch_with_room_for_a_short_text_still_waits_for_one(engine: Engine) -> None:
    """One long text leaves room for a short one: the batch waits, and the short text joins it."""
    runner = GatedRunner(engine)
    long_text, short_text = engine.tokenizer.encode(["word " * 40, "hi"])

    async def main() -> list[TaskResult]:
        # 32 + 32 tokens fit the budget of 64; a third row would not, whatever its length.
        config = BatcherConfig(max_batch_size=32, max_batch_tokens=64, max_queue_delay_ms=1000)
        async with Batcher(runner, config, max_positions=MAX_LENGTH) as batcher:
            first = asyncio.ensure_future(batcher.submit(long_text, EmbedRequest()))
            await asyncio.sleep(0.3)
            second = asyncio.ensure_future(batcher.submit(short_text, EmbedRequest()))
            return list(await asyncio.gather(first, second))

    assert len(asyncio.run(main())) == 2
    assert runner.batches == [2]


def test_a_cancelled_oldest_text_does_not_hurry_the_others_into_a_batch(engine: Engine) -> None:
    """
    The queue delay counts from the oldest live text: after the oldest is cancelled, the next
    waits its own full delay, and a text arriving meanwhile joins its batch.
    """
    runner = GatedRunner(engine)
    first, second, third = engine.tokenizer.encode(["one", "two", "three"])

    async def main() -> list[TaskResult]:
        config = BatcherConfig(max_batch_size=8, max_queue_delay_ms=1000)
        async with Batcher(runner, config, max_positions=64) as batcher:
            oldest = asyncio.ensure_future(batcher.submit(first, EmbedRequest()))
            await asyncio.sleep(0.5)
            waiting = asyncio.ensure_future(batcher.submit(second, EmbedRequest()))
            await asyncio.sleep(0.1)
            oldest.cancel()
            # Past the cancelled text's deadline (1.0 s), well before the next one's (1.5 s).
            await asyncio.sleep(0.6)
            late = asyncio.ensure_future(batcher.submit(third, EmbedRequest()))
            return list(await asyncio.gather(waiting, late))

    assert len(asyncio.run(main())) == 2
    assert runner.batches == [2]


def test_close_drains_queued_work_and_refuses_new_work(engine: Engine) -> None:
    sequences = engine.tokenizer.encode([f"text {i}" for i in range(50)])

    async def main() -> list[TaskResult]:
        batcher = Batcher(
            engine, BatcherConfig(max_batch_size=8, max_queue_delay_ms=20), max_positions=64
        )
        tasks = [asyncio.ensure_future(batcher.submit(s, EmbedRequest())) for s in sequences]
        await asyncio.sleep(0)
        await batcher.close()
        assert all(task.done() for task in tasks), "close() returned before draining"
        with pytest.raises(ShuttingDown):
            await batcher.submit(sequences[0], EmbedRequest())
        return [task.result() for task in tasks]

    assert len(asyncio.run(main())) == 50


def test_different_tasks_are_never_mixed_in_one_batch(engine: Engine, classifier: Engine) -> None:
    sequences = classifier.tokenizer.encode(["good day", "bad day", "a cat", "a dog"])

    async def main() -> list[TaskResult]:
        async with Batcher(
            classifier, BatcherConfig(max_batch_size=8), max_positions=64
        ) as batcher:
            requests: list[TaskRequest] = [EmbedRequest(), ClassifyRequest()] * 2
            return await asyncio.gather(
                *(batcher.submit(s, r) for s, r in zip(sequences, requests, strict=True))
            )

    results = asyncio.run(main())
    assert [type(r) for r in results] == [Embedding, Classification, Embedding, Classification]


def test_a_failing_on_batch_callback_loses_no_request(engine: Engine) -> None:
    sequences = engine.tokenizer.encode(["first", "second"])
    calls: list[int] = []

    def broken_metrics(stats: BatchStats) -> None:
        calls.append(stats.size)
        raise RuntimeError("metrics backend down")

    async def main() -> list[TaskResult]:
        config = BatcherConfig(max_batch_size=1, max_queue_delay_ms=0)
        async with Batcher(engine, config, max_positions=64, on_batch=broken_metrics) as batcher:
            first = await asyncio.wait_for(batcher.submit(sequences[0], EmbedRequest()), 30)
            second = await asyncio.wait_for(batcher.submit(sequences[1], EmbedRequest()), 30)
            return [first, second]

    results = asyncio.run(main())
    assert all(isinstance(r, Embedding) for r in results)
    assert calls == [1, 1]


class RunnerStopped(BaseException):
    """Not an Exception, so it escapes the per-item error handling, as an interpreter stop would."""


class StoppingRunner(GatedRunner):
    def run(
        self, sequences: Sequence[np.ndarray], requests: Sequence[TaskRequest], multiple: int
    ) -> list[TaskResult]:
        self.gate.wait(timeout=30)
        raise RunnerStopped()


def test_a_stopped_loop_fails_waiting_submissions_instead_of_hanging(engine: Engine) -> None:
    runner = StoppingRunner(engine)
    stops: list[BaseException] = []
    sequences = engine.tokenizer.encode([f"text {i}" for i in range(5)])

    async def main() -> list[TaskResult | BaseException]:
        runner.gate.clear()
        config = BatcherConfig(max_batch_size=2, max_queue_delay_ms=0)
        batcher = Batcher(runner, config, max_positions=64, on_stop=stops.append)
        tasks = [asyncio.ensure_future(batcher.submit(s, EmbedRequest())) for s in sequences]
        await asyncio.sleep(0.05)  # the first batch is held at the gate, the rest are queued
        runner.gate.set()
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        with pytest.raises(ShuttingDown):
            await batcher.submit(sequences[0], EmbedRequest())
        await batcher.close()
        return outcomes

    outcomes = asyncio.run(main())
    assert len(outcomes) == 5
    assert all(isinstance(outcome, ShuttingDown) for outcome in outcomes)
    assert len(stops) == 1 and isinstance(stops[0], RunnerStopped)


def test_pairs_and_single_texts_share_batches_with_their_own_token_types(
    classifier: Engine,
) -> None:
    pairs = [("a cat sat on the mat", "the dog sat on the rug"), ("is it good ?", "it is bad")]
    singles = ["a cat sat on the mat the dog sat on the rug", "hello world"]
    encoded = classifier.tokenizer.encode_pairs(pairs)
    pair_requests = [ClassifyRequest(second_text_start=start) for _, start in encoded]

    async def main() -> tuple[list[TaskResult], list[TaskResult]]:
        async with Batcher(
            classifier, BatcherConfig(max_batch_size=8, max_queue_delay_ms=20), max_positions=64
        ) as batcher:
            return await asyncio.gather(
                batcher.submit_many([ids for ids, _ in encoded], pair_requests),
                batcher.submit_many(classifier.tokenizer.encode(singles), ClassifyRequest()),
            )

    batched_pairs, batched_singles = asyncio.run(main())
    for mine, theirs in zip(
        [*batched_pairs, *batched_singles],
        [*classifier.classify_pairs(pairs), *classifier.classify(singles)],
        strict=True,
    ):
        assert isinstance(mine, Classification)
        assert mine.label == theirs.label
        np.testing.assert_allclose(
            list(mine.scores.values()), list(theirs.scores.values()), atol=2e-6, rtol=0
        )
