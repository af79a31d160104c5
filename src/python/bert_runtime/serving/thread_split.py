"""On CPU, small batches of a small model run on a second session with one intra-op thread.

ONNX Runtime's intra-op pool hands each operator it splits to its other threads and waits for
them (onnxruntime 1.31, no spinning: session.py), which costs a few microseconds a split operator
whatever its size. A small model's operators on a small batch are that small: the tiny test model
(2 layers, width 32) runs one 16-token text in 51 us of wall and CPU time on one thread against 77
us of wall and 94 us of CPU on two, and 7 x 40 tokens in the same wall time on both (477 and 484
us) for a third less CPU on one; at 16 x 64 tokens two threads are 20% faster. all-MiniLM-L6-v2
fp32 needs the second thread even for one short text (1 x 8 tokens: 3.5 against 2.4 ms). Its int8
form ran single texts on one thread for 28-38% less CPU, but served under load it lost 1-8% with
the two sessions side by side (docs/BENCHMARKS.md, "Small batches on one thread"), so a model
whose short run takes a millisecond or more keeps one session.

So where the engine sizes its pool itself (`intra_op_threads` unset) with more than one thread,
warm-up times a one-text run; if that is under `SMALL_MODEL_RUN_S`, it loads the model a second
time with one thread and times both sessions in turn on batches of growing size. Batches up to the
largest size at which one thread was no slower (every smaller size too) run on it, the rest on the
full pool; where one thread was slower at once, the second session is dropped. A model over
`SMALL_MODEL_RUN_S` never loads twice. Written here: ONNX Runtime has no per-run thread count
(onnxruntime 1.31.1: RunOptions and its config keys, onnxruntime_run_options_config_keys.h, carry
none).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bert_runtime.config import EngineConfig
from bert_runtime.cpus import cpu_budget, default_intra_op_threads
from bert_runtime.serving.planner import BatchPlanner
from bert_runtime.serving.session import create_session
from bert_runtime.serving.turns import medians_in_turn

logger = logging.getLogger(__name__)

# A model whose 1 x 8-token run takes longer keeps one session: its operators have work enough
# to share between threads, and two copies of weights that size cost more than they save.
SMALL_MODEL_RUN_S = 1e-3
# One thread counts as no slower within this ratio of the full pool's time (host noise).
TOLERANCE = 1.05
# Timed runs of each session at each size, taken in turn; their median is compared.
ROUNDS = 9
# The row length of the measured batches (rows double from 1 up to the budget).
_ROW_TOKENS = 32

Feeds = dict[str, np.ndarray]


@dataclass(frozen=True)
class SizeTiming:
    """Median wall seconds of one batch size on the full pool and on one thread."""

    rows: int
    length: int
    pool_s: float
    one_s: float

    @property
    def tokens(self) -> int:
        return self.rows * self.length

    @property
    def one_thread_no_slower(self) -> bool:
        return self.one_s <= self.pool_s * TOLERANCE


@dataclass(frozen=True)
class ThreadSplit:
    """Batches of at most `max_tokens` padded tokens run on `session`, which has one thread."""

    session: ort.InferenceSession
    max_tokens: int
    timings: tuple[SizeTiming, ...]

    def describe(self) -> str:
        """One line for the start-up log: the split, and the times it was chosen by."""
        sizes = ", ".join(
            f"{t.rows}x{t.length} {1e6 * t.one_s:.0f}/{1e6 * t.pool_s:.0f} us" for t in self.timings
        )
        return (
            f"batches up to {self.max_tokens} tokens run on one intra-op thread "
            f"(one thread/full pool: {sizes})"
        )


def pool_threads(config: EngineConfig) -> int | None:
    """
    The pool's thread count where the engine sizes it itself (None where `intra_op_threads` or
    ONNX Runtime's ORT_INTRA_OP_NUM_THREADS sets it: then it is left as set).
    """
    if config.intra_op_threads is not None or os.environ.get("ORT_INTRA_OP_NUM_THREADS"):
        return None
    return default_intra_op_threads() or cpu_budget().physical_cores


def sizes(planner: BatchPlanner, max_length: int) -> list[tuple[int, int]]:
    """(rows, length) to time, growing: one short text, then rows doubling within the budget."""
    short = planner.padded_length(min(8, max_length))
    length = planner.padded_length(min(_ROW_TOKENS, max_length))
    found = [(1, short)]
    rows = 1
    while planner.fits(rows, length):
        if rows * length > short:
            found.append((rows, length))
        rows *= 2
    return found


def largest_no_slower(timings: Sequence[SizeTiming]) -> int | None:
    """
    The most tokens up to which one thread was no slower at every size measured (in growing
    order), None where it was slower at the first.
    """
    largest = None
    for timing in timings:
        if not timing.one_thread_no_slower:
            break
        largest = timing.tokens
    return largest


def _session_medians(
    sessions: Sequence[ort.InferenceSession], feeds: Feeds, outputs: list[str]
) -> list[float]:
    """Each session's median wall seconds on `feeds` (turns.py), after one untimed run each."""
    runs = [functools.partial(session.run, outputs, feeds) for session in sessions]
    for run in runs:
        run()  # it allocates
    return medians_in_turn(runs, ROUNDS)


def measure_split(
    config: EngineConfig,
    pool: ort.InferenceSession,
    model_path: Path,
    batch_feeds: Callable[[int, int], Feeds],
    shapes: Sequence[tuple[int, int]],
    outputs: Sequence[str] = ("mean_embedding",),
) -> ThreadSplit | None:
    """
    The split for the model at `model_path` whose session `pool` has `config`'s threads, or
    None: the pool is sized by hand or has one thread, its one-text run is not short, or one
    thread was slower already at the smallest of `shapes` (batch_feeds(rows, length) makes
    their inputs). `outputs`: what the measured runs compute (every prepared model has it).
    """
    threads = pool_threads(config)
    if threads is None or threads < 2:
        return None
    return _measure(
        pool,
        lambda: create_session(model_path, dataclasses.replace(config, intra_op_threads=1)),
        batch_feeds,
        shapes,
        list(outputs),
    )


def _measure(
    pool: ort.InferenceSession,
    load_one_thread: Callable[[], ort.InferenceSession],
    batch_feeds: Callable[[int, int], Feeds],
    shapes: Sequence[tuple[int, int]],
    outputs: list[str],
) -> ThreadSplit | None:
    """measure_split's timing: the gate on `pool` alone, then both sessions size by size."""
    (alone,) = _session_medians([pool], batch_feeds(*shapes[0]), outputs)
    if alone >= SMALL_MODEL_RUN_S:
        return None
    one = load_one_thread()
    timings = []
    for rows, length in shapes:
        pool_s, one_s = _session_medians([pool, one], batch_feeds(rows, length), outputs)
        timings.append(SizeTiming(rows, length, pool_s, one_s))
        if not timings[-1].one_thread_no_slower:
            break
    largest = largest_no_slower(timings)
    if largest is None:
        first = timings[0]
        logger.info(
            "one intra-op thread was slower already at %dx%d tokens (%.0f against %.0f us): "
            "every batch runs on the full pool",
            first.rows,
            first.length,
            1e6 * first.one_s,
            1e6 * first.pool_s,
        )
        return None
    split = ThreadSplit(one, largest, tuple(timings))
    logger.info("%s", split.describe())
    return split
