"""Which batch shapes an Engine runs once at load, so that no request pays for a first run.

A first run at a shape allocates its activations and, on CUDA, makes cuBLAS and the attention
kernels choose their algorithms for it (and, with CUDA graphs, captures the bucket's graph). On
CPU a shape costs little to meet later, and each warm-up run of bert-base costs a CPU seconds, so
CPU keeps two: the shortest and the planner's largest batch. On CUDA a run costs milliseconds, so
every padded length the planner can produce is met alone and in the largest batch the token
budget allows at that length, and, where batches' rows are padded up to a few counts
(row_buckets.py, CUDA's default), at each of those counts too; with CUDA graphs, every bucket.
"""

from __future__ import annotations

from bert_runtime.serving.cuda_graphs import GraphBuckets
from bert_runtime.serving.planner import BatchPlanner
from bert_runtime.serving.row_buckets import warmup_rows, widest


def warmup_shapes(
    planner: BatchPlanner,
    max_length: int,
    on_cuda: bool,
    buckets: GraphBuckets | None = None,
    bucketed_rows: bool = False,
) -> list[tuple[int, int]]:
    """
    (rows, tokens per row) to run once each, in order; `buckets` when CUDA graphs are on;
    `bucketed_rows` when batches' rows are padded up to row_buckets' counts.
    """
    if buckets is not None:
        return buckets.shapes()
    if not on_cuda:
        return [(1, min(8, max_length)), (widest(planner, max_length), max_length)]
    lengths = sorted({planner.padded_length(n) for n in range(1, max_length + 1)})
    lengths = [min(length, max_length) for length in lengths]
    shapes: list[tuple[int, int]] = []
    for length in dict.fromkeys(lengths):
        for rows in warmup_rows(planner, length) if bucketed_rows else (1, widest(planner, length)):
            if (rows, length) not in shapes:
                shapes.append((rows, length))
    return shapes
