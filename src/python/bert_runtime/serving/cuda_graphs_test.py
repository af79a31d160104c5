"""
Bucketing and fixed-address IO binding for CUDA graphs, run on CPU: the same binding and buffer
reuse, without the capture (which needs a GPU: gpu_bench's CUDA graphs table).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bert_runtime.config import BatchBudget
from bert_runtime.serving.cuda_graphs import GraphBuckets, GraphRunner, graph_buckets
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.planner import BatchPlanner
from bert_runtime.testutil.models import fixture_engine, prepared_model

OUTPUTS = ["mean_embedding", "cls_embedding"]


def test_buckets_are_powers_of_two_rows_and_32_token_steps() -> None:
    buckets = graph_buckets(max_rows=256, max_tokens=32768, longest=128)
    assert buckets.rows == (1, 2, 4, 8, 16, 32, 64, 128, 256)
    assert buckets.lengths == (32, 64, 96, 128)
    assert len(buckets.shapes()) == 36
    assert graph_buckets(max_rows=24, max_tokens=1024, longest=12).lengths == (12,)
    assert graph_buckets(max_rows=24, max_tokens=1024, longest=12).rows == (1, 2, 4, 8, 16, 24)


def test_a_batch_goes_to_the_smallest_bucket_that_holds_it() -> None:
    buckets = graph_buckets(max_rows=32, max_tokens=1024, longest=128)
    assert buckets.shape_for(1, 8) == (1, 32)
    assert buckets.shape_for(3, 33) == (4, 64)
    assert buckets.shape_for(8, 128) == (8, 128)
    # 16 x 128 = 2048 tokens is past the budget, although 9 x 128 is within it.
    assert buckets.shape_for(9, 128) is None
    assert buckets.shape_for(33, 8) is None
    assert all(rows * length <= 1024 for rows, length in buckets.shapes())


@given(
    max_rows=st.integers(1, 300),
    per_row=st.sampled_from([32, 64, 128, 512]),
    longest=st.integers(2, 512),
    rows=st.integers(1, 300),
    length=st.integers(1, 512),
)
def test_a_bucket_always_holds_the_batch_within_the_budget(
    max_rows: int, per_row: int, longest: int, rows: int, length: int
) -> None:
    planner = BatchPlanner(BatchBudget(max_rows, max_rows * per_row), 0, 512)
    padded = planner.padded_length(longest)
    buckets = graph_buckets(max_rows, max_rows * per_row, padded)
    length = min(length, longest)
    shape = buckets.shape_for(rows, planner.padded_length(length))
    if rows > max_rows:
        assert shape is None
    elif shape is not None:
        bucket_rows, bucket_length = shape
        assert rows <= bucket_rows <= max_rows and bucket_rows < 2 * rows + 1
        assert planner.padded_length(length) <= bucket_length <= padded
        assert bucket_rows * bucket_length <= max_rows * per_row


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return fixture_engine(prepared_model(tmp_path_factory.mktemp("graphs"), "tiny-bert"))


def _feeds(engine: Engine, texts: list[str]) -> dict[str, np.ndarray]:
    return engine.pad(engine.tokenizer.encode(texts)).model_inputs()


@pytest.mark.parametrize(
    "texts",
    [["hello"], ["hello world", "the cat sat on the mat", "a"], ["x y z"] * 5],
)
def test_bound_buffers_give_a_plain_runs_outputs_for_the_real_rows(
    engine: Engine, texts: list[str]
) -> None:
    runner = GraphRunner(engine._session, graph_buckets(8, 512, 64), engine.tokenizer.pad_id, "cpu")
    feeds = _feeds(engine, texts)
    assert runner.accepts(feeds)
    bound = runner.run(feeds, OUTPUTS)
    plain = engine._session.run(OUTPUTS, feeds)
    for found, expected in zip(bound, plain, strict=True):
        assert found.shape == expected.shape == (len(texts), expected.shape[1])
        np.testing.assert_allclose(found, expected, rtol=0, atol=1e-6)


def test_each_bucket_binds_its_buffers_once_and_updates_them_in_place(engine: Engine) -> None:
    runner = GraphRunner(engine._session, graph_buckets(8, 512, 64), engine.tokenizer.pad_id, "cpu")
    first = runner.run(_feeds(engine, ["one text", "and another", "a third"]), OUTPUTS)
    (slot,) = runner._slots.values()
    addresses = [value.data_ptr() for value in (*slot.inputs.values(), *slot.outputs)]
    second = runner.run(_feeds(engine, ["different words here", "b", "c", "d"]), OUTPUTS)
    assert runner.captured == 1  # 3 and 4 rows of <= 32 tokens share the (4, 32) bucket
    assert [value.data_ptr() for value in (*slot.inputs.values(), *slot.outputs)] == addresses
    assert not np.allclose(first[0][0], second[0][0])
    runner.run(_feeds(engine, ["a longer text " * 4]), OUTPUTS)
    runner.run(_feeds(engine, ["one text"]), ["mean_embedding"])
    assert runner.captured == 3  # a new length bucket, and a new set of outputs


def test_batches_no_bucket_holds_are_left_to_plain_runs(engine: Engine) -> None:
    runner = GraphRunner(
        engine._session, GraphBuckets((1, 2), (32,), 64), engine.tokenizer.pad_id, "cpu"
    )
    assert not runner.accepts(_feeds(engine, ["a", "b", "c"]))
    assert not runner.accepts(_feeds(engine, ["word " * 40]))
    with_masks = {**_feeds(engine, ["a"]), "mask_positions": np.zeros((0, 2), np.int64)}
    assert not runner.accepts(with_masks)
    with pytest.raises(ValueError, match="no bucket holds a batch of 3"):
        runner.run(_feeds(engine, ["a", "b", "c"]), OUTPUTS)
