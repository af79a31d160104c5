"""Batch rows padded up to a few counts on CUDA, so the session meets only shapes it has run.

On an H200 with onnxruntime-gpu 1.31.1 the first run of the tiny model at a row count it had not
run before took 73-80 ms of host time, against 1.2-1.4 ms once met (docs/BENCHMARKS.md, "A first
run at a new shape"); under single-text traffic nearly every batch had a row count of its own, and
the engine process spent its time there. So on CUDA (without CUDA graphs, which bucket both
dimensions themselves) a batch's rows are padded up to the next of a few counts and warm-up runs
each of them at every padded length: powers of two up to ROW_STEP, then multiples of ROW_STEP
(at most ROW_STEP - 1 padding rows, a small share of a large batch), never past what the token
budget allows at the batch's length. Padding rows attend to one token (a zero-length row is not
a case every fused attention kernel defines); only the real rows' outputs are returned. Fill-mask
runs stay as they are: their outputs are one row per mask, not per text.
"""

from __future__ import annotations

import functools

import numpy as np

from bert_runtime.serving.planner import BatchPlanner

ROW_STEP = 32


@functools.cache  # read for every CUDA batch
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


# The feeds that hold one row per text; the rest (a fill-mask model's mask positions and top-k,
# empty when it embeds or classifies) pass through unchanged.
ROW_FEEDS = ("input_ids", "attention_mask", "token_type_ids")


def padded_rows(feeds: dict[str, np.ndarray], rows: int, pad_id: int) -> dict[str, np.ndarray]:
    """`feeds` with padding rows up to `rows` in each of ROW_FEEDS."""
    padded = dict(feeds)
    for name in ROW_FEEDS:
        if name not in feeds:  # ModernBERT takes no token types
            continue
        value = feeds[name]
        extra = np.zeros((rows - value.shape[0], value.shape[1]), value.dtype)
        if name == "input_ids":
            extra.fill(pad_id)
        elif name == "attention_mask":
            extra[:, 0] = 1
        padded[name] = np.concatenate([value, extra])
    return padded


def is_row_batch(feeds: dict[str, np.ndarray]) -> bool:
    """
    Whether each output row belongs to one text, so padding rows can be cut off again: no mask
    positions to fill (a fill-mask run's outputs are one row per mask, not per text).
    """
    positions = feeds.get("mask_positions")
    return "input_ids" in feeds and (positions is None or positions.shape[0] == 0)
