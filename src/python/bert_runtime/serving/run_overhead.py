"""What one more run costs on CPU, in tokens: the planner's `run_overhead_tokens`.

`min_fill` keeps a CPU batch from padding short texts to a long one, since a batch's time follows
its padded tokens. But every run also has a fixed cost: padding the inputs, ONNX Runtime's
per-operator hand-offs, pooling the outputs. For a small model that fixed cost is worth dozens of
tokens (the tiny test model: its batches of single texts ran at half the size under `min_fill`
alone, and cost more CPU a text, docs/BENCHMARKS.md). Warm-up times the engine's own run at one
row and at several rows of the same length and fits time = fixed + tokens x per-token; the fixed
part over the per-token part is what merging two batches saves, in tokens of padding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from bert_runtime.serving.turns import medians_in_turn

ROUNDS = 7
LENGTH = 32
ROWS = 8


@dataclass(frozen=True)
class RunOverhead:
    """The fit, and the times it came from (seconds, medians)."""

    tokens: int
    one_row_s: float
    many_rows_s: float
    rows: int
    length: int

    def describe(self) -> str:
        return (
            f"a run's fixed cost is worth {self.tokens} tokens of padding "
            f"(1 x {self.length} tokens: {self.one_row_s * 1e3:.3f} ms, "
            f"{self.rows} x {self.length}: {self.many_rows_s * 1e3:.3f} ms)"
        )


def overhead_tokens(one_row_s: float, many_rows_s: float, rows: int, length: int, cap: int) -> int:
    """
    The fixed cost over the per-token cost, from a run of one row and one of `rows` rows of
    `length` tokens, within 0..`cap`; `cap` where more rows took no longer (all fixed cost).
    """
    per_token = (many_rows_s - one_row_s) / ((rows - 1) * length)
    if per_token <= 0:
        return cap
    fixed = one_row_s - per_token * length
    return max(0, min(cap, round(fixed / per_token)))


def measure(run: Callable[[int, int], None], max_rows: int, max_tokens: int) -> RunOverhead:
    """
    Time `run(rows, length)` at 1 x LENGTH and ROWS x LENGTH tokens in turn (within the budget:
    `max_rows`, `max_tokens`), medians of ROUNDS; the fit is capped at half the token budget.
    """
    rows = min(ROWS, max_rows, max_tokens // LENGTH)
    if rows < 2:
        return RunOverhead(0, 0.0, 0.0, rows, LENGTH)
    one, many = medians_in_turn([partial(run, 1, LENGTH), partial(run, rows, LENGTH)], ROUNDS)
    tokens = overhead_tokens(one, many, rows, LENGTH, max_tokens // 2)
    return RunOverhead(tokens, one, many, rows, LENGTH)
