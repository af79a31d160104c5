"""Batch rows padded up to a few counts on CUDA, so the session meets only shapes it has run.

On an H200 with onnxruntime-gpu 1.31.1 the first run of the tiny model at a row count it had not
run before took 73-80 ms of host time, against 1.2-1.4 ms once met (docs/BENCHMARKS.md, "A first
run at a new shape"); under single-text traffic nearly every batch had a row count of its own, and
the engine process spent its time there. So on CUDA (without CUDA graphs, which bucket both
dimensions themselves) a batch's rows are padded up to the next of a few counts and warm-up runs
each of them at every padded length: powers of two up to ROW_STEP, then multiples of ROW_STEP
(at most ROW_STEP - 1 padding rows, a small share of a large batch), never past what the token
budget allows at the batch's length. Padding rows attend to one token (a zero-length row is not
a case every fused attention kernel defines); only the real rows' outputs are returned.
"""

from __future__ import annotations

import numpy as np

from bert_runtime.serving.planner import BatchPlanner

ROW_STEP = 32


def row_buckets(max_rows: int) -> tuple[int, ...]:
    """The row counts a batch is padded up to, for a budget of `max_rows` rows."""
    small = [2**power for power in range(ROW_STEP.bit_length()) if 2**power < ROW_STEP]
    steps = range(ROW_STEP, max_rows, ROW_STEP)
    return tuple(sorted({count for count in [*small, *steps] if count < max_rows} | {max_rows}))


def widest(planner: BatchPlanner, length: int) -> int:
    """The most rows the budget allows at padded `length`."""
    budget = planner.budget
    return max(1, min(budget.max_rows, budget.max_tokens // planner.padded_length(length)))


def bucket_rows(planner: BatchPlanner, rows: int, length: int) -> int:
    """The row count a batch of `rows` x `length` runs at: its bucket, within the budget."""
    buckets = row_buckets(planner.budget.max_rows)
    bucket = next((count for count in buckets if count >= rows), rows)
    return max(rows, min(bucket, widest(planner, length)))


def warmup_rows(planner: BatchPlanner, length: int) -> list[int]:
    """Every row count `bucket_rows` gives at `length` (what warm-up runs)."""
    cap = widest(planner, length)
    return sorted({min(count, cap) for count in row_buckets(planner.budget.max_rows)})


def padded_rows(feeds: dict[str, np.ndarray], rows: int, pad_id: int) -> dict[str, np.ndarray]:
    """`feeds` ([batch rows, length] each) with padding rows up to `rows`."""
    padded = {}
    for name, value in feeds.items():
        extra = np.zeros((rows - value.shape[0], value.shape[1]), value.dtype)
        if name == "input_ids":
            extra.fill(pad_id)
        elif name == "attention_mask":
            extra[:, 0] = 1
        padded[name] = np.concatenate([value, extra])
    return padded


def is_row_batch(feeds: dict[str, np.ndarray]) -> bool:
    """Whether every feed is [rows, length] with the same rows (not fill-mask's extra inputs)."""
    shapes = {value.shape[0] if value.ndim == 2 else -1 for value in feeds.values()}
    return len(shapes) == 1 and -1 not in shapes and "input_ids" in feeds
