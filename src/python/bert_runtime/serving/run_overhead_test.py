"""A run's fixed cost in tokens: the fit, the runs it times, and the engine's warm-up using it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bert_runtime.config import EngineConfig
from bert_runtime.serving import run_overhead
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.run_overhead import LENGTH, ROUNDS, measure, overhead_tokens
from bert_runtime.testutil.models import prepared_model


def test_the_fit_is_the_fixed_cost_over_the_cost_of_a_token() -> None:
    # 100 us fixed and 1 us a token: 132 us for 1 x 32 tokens, 356 us for 8 x 32.
    assert overhead_tokens(132e-6, 356e-6, 8, 32, cap=512) == 100
    # All per-token cost: nothing to save by merging.
    assert overhead_tokens(32e-6, 256e-6, 8, 32, cap=512) == 0
    # Noise can make one row look cheaper than its tokens: never below 0.
    assert overhead_tokens(20e-6, 256e-6, 8, 32, cap=512) == 0
    # More rows no slower (all fixed cost), or a huge fit: the cap.
    assert overhead_tokens(300e-6, 290e-6, 8, 32, cap=512) == 512
    assert overhead_tokens(10e-3, 10.1e-3, 8, 32, cap=512) == 512


def test_it_times_one_row_and_several_in_turn_within_the_budget() -> None:
    calls: list[tuple[int, int]] = []
    found = measure(lambda rows, length: calls.append((rows, length)), 32, 1024)
    assert calls == [(1, LENGTH), (8, LENGTH)] * ROUNDS
    assert found.rows == 8 and 0 <= found.tokens <= 512
    calls.clear()
    measure(lambda rows, length: calls.append((rows, length)), 32, 4 * LENGTH)
    assert {rows for rows, _ in calls} == {1, 4}


def test_a_budget_of_one_row_measures_nothing() -> None:
    def never(rows: int, length: int) -> None:
        pytest.fail(f"ran {rows} x {length}")

    assert measure(never, 1, 1024).tokens == 0


def test_warmup_on_cpu_sets_the_planners_run_overhead(tmp_path: Path) -> None:
    engine = Engine(prepared_model(tmp_path, "tiny-bert"), EngineConfig(warmup=False))
    assert engine.planner.budget.run_overhead_tokens == 0
    engine.warmup()
    budget = engine.planner.budget
    # The tiny model's run is mostly fixed cost (about 60 tokens' worth on a 2-core EPYC).
    assert 0 < budget.run_overhead_tokens <= budget.max_tokens // 2
    assert budget.min_fill == 0.8  # the rest of the budget as it was


def test_the_description_names_the_times_it_came_from() -> None:
    found = run_overhead.RunOverhead(62, 151e-6, 510e-6, 8, 32)
    assert found.describe() == (
        "a run's fixed cost is worth 62 tokens of padding "
        "(1 x 32 tokens: 0.151 ms, 8 x 32: 0.510 ms)"
    )
