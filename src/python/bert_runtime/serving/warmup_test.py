from __future__ import annotations

from bert_runtime.config import BatchBudget
from bert_runtime.serving.cuda_graphs import graph_buckets
from bert_runtime.serving.planner import BatchPlanner
from bert_runtime.serving.warmup import warmup_shapes


def test_cpu_warms_the_shortest_shape_and_the_largest_batch() -> None:
    planner = BatchPlanner(BatchBudget(32, 1024), 0, 512)
    assert warmup_shapes(planner, 128, on_cuda=False) == [(1, 8), (8, 128)]


def test_cuda_warms_every_padded_length_alone_and_in_its_largest_batch() -> None:
    planner = BatchPlanner(BatchBudget(256, 32768), 0, 512)
    shapes = warmup_shapes(planner, 128, on_cuda=True)
    lengths = sorted({planner.padded_length(n) for n in range(1, 129)})
    assert sorted({planner.padded_length(length) for _, length in shapes}) == lengths
    for length in lengths:
        assert (1, length) in shapes
        assert (min(256, 32768 // length), length) in shapes
    assert all(rows * planner.padded_length(n) <= 32768 for rows, n in shapes)


def test_a_length_past_the_pad_multiple_is_met_at_its_padded_width() -> None:
    # max_length 100 pads to 104: the warm-up runs 100-token texts, which the planner pads.
    planner = BatchPlanner(BatchBudget(4, 4096), 0, 512)
    shapes = warmup_shapes(planner, 100, on_cuda=True)
    assert max(length for _, length in shapes) == 100
    assert planner.padded_length(100) == 104


def test_with_cuda_graphs_every_bucket_is_captured() -> None:
    planner = BatchPlanner(BatchBudget(64, 8192), 0, 512)
    buckets = graph_buckets(64, 8192, 128)
    assert warmup_shapes(planner, 128, on_cuda=True, buckets=buckets) == buckets.shapes()
