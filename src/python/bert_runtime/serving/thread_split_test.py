"""The thread split on CPU: the sizes it measures, what it chooses, and that both sessions agree."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from bert_runtime.config import BatchBudget, EngineConfig
from bert_runtime.manifest import MODEL_NAME
from bert_runtime.serving import thread_split
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.planner import BatchPlanner
from bert_runtime.serving.session import create_session
from bert_runtime.serving.thread_split import (
    SizeTiming,
    ThreadSplit,
    largest_no_slower,
    measure_split,
    pool_threads,
    sizes,
)
from bert_runtime.testutil.models import golden_texts, prepared_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepared_model(tmp_path_factory.mktemp("models"), "tiny-bert")


def timing(rows: int, pool_us: float, one_us: float) -> SizeTiming:
    return SizeTiming(rows, 32, pool_us * 1e-6, one_us * 1e-6)


def test_the_split_ends_where_one_thread_is_first_slower() -> None:
    timings = [timing(1, 80, 50), timing(2, 200, 209), timing(4, 300, 330), timing(8, 500, 400)]
    # 209 is within 5% of 200; 330 is not within 5% of 300, and what follows does not count.
    assert largest_no_slower(timings) == 64


def test_no_split_where_one_thread_is_slower_at_once() -> None:
    assert largest_no_slower([timing(1, 100, 120), timing(2, 200, 150)]) is None


def test_every_size_no_slower_splits_at_the_largest() -> None:
    assert largest_no_slower([timing(1, 80, 50), timing(4, 300, 290)]) == 128


def test_sizes_grow_within_the_budget_from_one_short_text() -> None:
    planner = BatchPlanner(BatchBudget(max_rows=64, max_tokens=1024, pad_multiple=8), 0, 512)
    assert sizes(planner, 512) == [(1, 8), (1, 32), (2, 32), (4, 32), (8, 32), (16, 32), (32, 32)]
    tight = BatchPlanner(BatchBudget(max_rows=4, max_tokens=1024, pad_multiple=8), 0, 512)
    assert sizes(tight, 512) == [(1, 8), (1, 32), (2, 32), (4, 32)]
    # A model whose texts stop at 8 tokens: its rows are 8 long.
    short = BatchPlanner(BatchBudget(max_rows=64, max_tokens=32, pad_multiple=8), 0, 8)
    assert sizes(short, 8) == [(1, 8), (2, 8), (4, 8)]


def test_a_pool_sized_by_hand_is_left_as_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORT_INTRA_OP_NUM_THREADS", raising=False)
    assert pool_threads(EngineConfig(intra_op_threads=2)) is None
    assert (pool_threads(EngineConfig()) or 0) >= 1
    monkeypatch.setenv("ORT_INTRA_OP_NUM_THREADS", "2")
    assert pool_threads(EngineConfig()) is None


def test_a_model_whose_one_text_run_is_long_loads_once(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(thread_split, "SMALL_MODEL_RUN_S", 0.0)
    monkeypatch.delenv("ORT_INTRA_OP_NUM_THREADS", raising=False)
    monkeypatch.setattr(thread_split, "default_intra_op_threads", lambda: 2)
    engine = Engine(model_dir, EngineConfig(warmup=False))
    runner = engine._runner
    split = measure_split(
        EngineConfig(),
        runner.session,
        model_dir / "absent.onnx",  # loading a second session would raise
        lambda rows, length: runner.feeds(engine.pad([np.zeros(length, np.int32)] * rows)),
        [(1, 8), (2, 8)],
    )
    assert split is None


def test_where_one_thread_counts_as_no_slower_small_batches_run_on_it(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real sessions, the decision fixed: every size "no slower", so the split takes them all.
    monkeypatch.setattr(thread_split, "SMALL_MODEL_RUN_S", math.inf)
    monkeypatch.setattr(thread_split, "TOLERANCE", math.inf)
    monkeypatch.delenv("ORT_INTRA_OP_NUM_THREADS", raising=False)
    monkeypatch.setattr(thread_split, "default_intra_op_threads", lambda: 2)
    engine = Engine(model_dir, EngineConfig(max_sequence_length=32))
    split = engine._runner.split
    assert split is not None
    expected = sizes(engine.planner, engine.max_length)
    assert [(t.rows, t.length) for t in split.timings] == expected
    assert split.max_tokens == expected[-1][0] * expected[-1][1]
    assert "one intra-op thread" in split.describe()
    # A batch the split holds runs on the one-thread session, a larger one on the pool.
    runner = engine._runner
    small = runner.feeds(engine.pad([np.zeros(8, np.int32)]))
    large = runner.feeds(engine.pad([np.zeros(32, np.int32)] * (split.max_tokens // 32 + 1)))
    assert runner.session_for(small) is split.session
    assert runner.session_for(large) is engine._session


def test_both_sessions_give_the_same_answers(model_dir: Path) -> None:
    pool = Engine(model_dir, EngineConfig(max_sequence_length=32, intra_op_threads=2))
    assert pool._runner.split is None  # a count set by hand is not measured
    split = Engine(model_dir, EngineConfig(max_sequence_length=32, intra_op_threads=2))
    one = create_session(model_dir / MODEL_NAME, EngineConfig(intra_op_threads=1))
    split._runner.split = ThreadSplit(one, 64, ())
    texts = golden_texts()
    for batch in ([texts[0]], texts):  # one text on the one thread; all of them past the split
        np.testing.assert_allclose(split.embed(batch), pool.embed(batch), rtol=1e-5, atol=1e-6)


def test_a_fill_mask_model_is_measured_and_answers_alike_on_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its graph takes mask positions and top_k too: the measured batches must carry them.
    model = prepared_model(tmp_path, "tiny-bert-mlm")
    pool = Engine(model, EngineConfig(max_sequence_length=32, intra_op_threads=2))
    monkeypatch.setattr(thread_split, "SMALL_MODEL_RUN_S", math.inf)
    monkeypatch.setattr(thread_split, "TOLERANCE", math.inf)
    monkeypatch.delenv("ORT_INTRA_OP_NUM_THREADS", raising=False)
    monkeypatch.setattr(thread_split, "default_intra_op_threads", lambda: 2)
    split = Engine(model, EngineConfig(max_sequence_length=32))
    assert split._runner.split is not None
    texts = ["the [MASK] sat on the mat", "a [MASK] ran far away"]
    assert split.fill_mask(texts, top_k=3) == pool.fill_mask(texts, top_k=3)
