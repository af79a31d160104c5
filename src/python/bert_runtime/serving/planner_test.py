"""The batch planner: padded shapes, direct-call groups and the batcher's choice within a budget."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bert_runtime.config import BatchBudget, Device, EngineConfig, default_budget
from bert_runtime.errors import ConfigError
from bert_runtime.serving.planner import BatchPlanner


def _planner(
    rows: int = 64, tokens: int = 1024, multiple: int = 8, min_fill: float = 0.0, overhead: int = 0
) -> BatchPlanner:
    budget = BatchBudget(rows, tokens, multiple, min_fill, run_overhead_tokens=overhead)
    return BatchPlanner(budget, pad_id=0, max_positions=512)


def _filled(planner: BatchPlanner, lengths: list[int], rows: list[int]) -> bool:
    return planner.filled(sum(lengths[i] for i in rows), len(rows), max(lengths[i] for i in rows))


def _sizes(groups: list[list[int]]) -> list[int]:
    return [len(group) for group in groups]


def test_lengths_round_up_to_the_multiple_but_never_past_the_positions() -> None:
    planner = BatchPlanner(BatchBudget(8, 4096, 8), pad_id=0, max_positions=60)
    assert [planner.padded_length(n) for n in (1, 8, 9, 57, 60)] == [8, 8, 16, 60, 60]


def test_equal_rows_split_into_equal_batches_under_the_budget() -> None:
    assert _sizes(_planner().groups([128] * 32)) == [8, 8, 8, 8]
    assert _sizes(_planner().groups([32] * 32)) == [32]
    assert _sizes(_planner(rows=10).groups([32] * 32)) == [10, 10, 10, 2]


def test_budget_is_counted_on_the_padded_shape() -> None:
    # Three rows of 5 tokens pad to 8 each: two fit in 16 tokens, the third starts a batch.
    assert _sizes(_planner(tokens=16).groups([5, 5, 5])) == [2, 1]


def test_direct_groups_sort_by_length_so_long_texts_pad_only_each_other() -> None:
    groups = _planner(tokens=64).groups([30, 2, 31, 3, 1])
    assert groups == [[4, 1, 3], [0, 2]]


def test_on_cpu_direct_groups_also_cut_where_padding_would_pass_the_fill_bound() -> None:
    lengths = [40, 10, 12, 10, 41]
    # 10, 10, 12 keep 32 of 36 tokens real; the 40 beside them would keep 72 of 160.
    assert _planner(min_fill=0.8).groups(lengths) == [[1, 3, 2], [0, 4]]
    # Without a bound (a GPU's budget) all five fit in one batch.
    assert _planner().groups(lengths) == [[1, 3, 2, 0, 4]]
    # Exactly at the bound is within it: 24 real of 30 (0.8 * 3 * 10 is not 24 in floats).
    assert _planner(min_fill=0.8).groups([6, 8, 10]) == [[0, 1, 2]]


@given(
    lengths=st.lists(st.integers(1, 512), max_size=64),
    tokens=st.integers(512, 4096),
    rows=st.integers(1, 64),
    multiple=st.sampled_from([1, 8, 64]),
    min_fill=st.sampled_from([0.0, 0.5, 0.8]),
    overhead=st.sampled_from([0, 40]),
)
def test_groups_cover_every_row_once_and_fit_the_budget_and_the_fill_bound(
    lengths: list[int], tokens: int, rows: int, multiple: int, min_fill: float, overhead: int
) -> None:
    planner = _planner(rows, tokens, multiple, min_fill, overhead)
    groups = planner.groups(lengths)
    assert sorted(i for group in groups for i in group) == list(range(len(lengths)))
    for group in groups:
        assert planner.fits(len(group), max(lengths[i] for i in group))
        assert overhead or _filled(planner, lengths, group)
    # Greedy: a batch ends only where the next row would have broken the budget, or both the
    # bound and the run's worth in padding.
    for current, following in itertools.pairwise(groups):
        longer = current + following[:1]
        fits = planner.fits(len(longer), max(lengths[i] for i in longer))
        joins = planner.worth_joining(
            len(current), max(lengths[i] for i in current), 1, lengths[following[0]]
        )
        assert not (fits and (_filled(planner, lengths, longer) or joins))


def test_choice_takes_the_closest_lengths_and_skips_rows_that_would_break_the_budget() -> None:
    lengths = [8, 9, 30, 31, 100]
    alone = list(range(len(lengths)))  # one request per row
    planner = _planner(tokens=4 * 32)
    # Around 30: 31 (1 away), then 9 (21 away), then 8, while 4 rows x 32 padded fit.
    assert planner.choose(lengths, alone, 2) == [2, 3, 1, 0]
    # Around 100 (padded 104): nothing else fits beside it.
    assert planner.choose(lengths, alone, 4) == [4]
    # The closer row (20) would break the budget; the farther one (4) does not.
    assert _planner(tokens=40).choose([4, 16, 20], [0, 1, 2], 1) == [1, 0]


def test_choice_takes_the_anchors_own_request_first_however_far_in_length() -> None:
    lengths = [30, 31, 29, 5, 6]
    requests = [0, 1, 2, 0, 0]
    # Two rows of room beside the anchor: its own request's rows, not the closer strangers.
    assert _planner(rows=3).choose(lengths, requests, 0) == [0, 4, 3]


def test_choice_takes_other_requests_whole_or_not_at_all() -> None:
    lengths = [10, 11, 12, 50, 9]
    requests = [0, 1, 1, 1, 2]
    # Request 1 has the closest rows, but all three do not fit beside the anchor; request 2 does.
    assert _planner(rows=3).choose(lengths, requests, 0) == [0, 4]
    # With room for five rows, request 1 comes whole, after request 2 (its farthest row is closer).
    assert _planner(rows=5).choose(lengths, requests, 0) == [0, 4, 1, 2, 3]


def test_on_cpu_a_long_stranger_waits_rather_than_pad_the_batch_past_half_empty() -> None:
    lengths = [16, 18, 20, 120]
    alone = [0, 1, 2, 3]
    planner = BatchPlanner(BatchBudget(32, 1024, min_fill=0.5), 0, 512)
    # 120 beside three of 16-20 would pad them all to 120: 174 real of 480 padded.
    assert planner.choose(lengths, alone, 0) == [0, 1, 2]
    # The bound holds for the anchor's own rows too: the 120 of its request keeps the batch at
    # 136 real of 240 (over 0.5), and then no 18 fits the bound; under 0.8 the 120 waits.
    assert planner.choose(lengths, [0, 1, 2, 0], 0) == [0, 3]
    strict = BatchPlanner(BatchBudget(32, 1024, min_fill=0.8), 0, 512)
    assert strict.choose(lengths, [0, 1, 2, 0], 0) == [0, 1, 2]
    # Without a bound (a GPU's budget) the long one joins.
    assert _planner(tokens=1024).choose(lengths, alone, 0) == [0, 1, 2, 3]


def test_the_fill_bound_counts_padding_to_the_longest_text_not_the_rounding() -> None:
    # Texts of 5 and 6 tokens pad to 8 (the pad multiple) whoever joins: 11 real of 16 padded
    # tokens is under 0.8, yet they share a batch, since the 6 pads the 5 by one token only.
    planner = BatchPlanner(BatchBudget(32, 1024, min_fill=0.8), 0, 512)
    assert planner.choose([5, 6, 5], [0, 1, 2], 0) == [0, 2, 1]
    # A 9 beside them would: 19 real of 27 padded to the longest (0.70).
    assert planner.choose([5, 5, 9], [0, 1, 2], 0) == [0, 1]


def test_rows_past_the_fill_bound_join_where_their_padding_costs_less_than_a_run() -> None:
    lengths, alone = [10, 25, 12], [0, 1, 2]
    # Beside 10 and 12, the 25 keeps 47 of 75 tokens real, under 0.8; it adds 75 - 24 - 25 = 26
    # tokens of padding, so it joins where a run is worth 26 tokens or more.
    assert _planner(min_fill=0.8).choose(lengths, alone, 0) == [0, 2]
    assert _planner(min_fill=0.8, overhead=25).choose(lengths, alone, 0) == [0, 2]
    assert _planner(min_fill=0.8, overhead=26).choose(lengths, alone, 0) == [0, 2, 1]
    # A direct call's groups the same way, and never past the budget.
    assert _planner(min_fill=0.8, overhead=25).groups(lengths) == [[0, 2], [1]]
    assert _planner(min_fill=0.8, overhead=26).groups(lengths) == [[0, 2, 1]]
    assert _planner(tokens=48, min_fill=0.8, overhead=500).groups(lengths) == [[0, 2], [1]]


def test_a_runs_worth_is_the_padding_joining_adds() -> None:
    planner = _planner(overhead=30)
    # Two rows of 20 and three of 10: 5 x 20 - 40 - 30 = 30 tokens added, either way round.
    assert planner.worth_joining(2, 20, 3, 10) and planner.worth_joining(3, 10, 2, 20)
    assert not planner.worth_joining(2, 20, 4, 10)  # 40 added
    with pytest.raises(ConfigError, match="run_overhead_tokens"):
        BatchBudget(8, 1024, run_overhead_tokens=-1)


@given(
    lengths=st.lists(st.integers(1, 128), min_size=1, max_size=80),
    request_seed=st.lists(st.integers(0, 6), min_size=80, max_size=80),
    anchor=st.integers(0, 79),
    rows=st.integers(1, 32),
    min_fill=st.sampled_from([0.0, 0.5, 0.8]),
)
def test_choice_holds_the_anchor_fits_the_budget_and_splits_no_other_request(
    lengths: list[int], request_seed: list[int], anchor: int, rows: int, min_fill: float
) -> None:
    anchor %= len(lengths)
    requests = request_seed[: len(lengths)]
    planner = _planner(rows, 1024, min_fill=min_fill)
    chosen = planner.choose(lengths, requests, anchor)
    assert chosen[0] == anchor and len(set(chosen)) == len(chosen)
    assert planner.fits(len(chosen), max(lengths[row] for row in chosen))
    assert len(chosen) == 1 or _filled(planner, lengths, chosen)
    own = requests[anchor]
    for request in {requests[row] for row in chosen} - {own}:
        members = [row for row, r in enumerate(requests) if r == request]
        assert set(members) <= set(chosen), "another request was split"
    # Own rows come before any other request's.
    kinds = [requests[row] == own for row in chosen]
    assert kinds == sorted(kinds, reverse=True)


def test_pad_right_pads_masks_and_marks_second_texts() -> None:
    planner = _planner()
    batch = planner.pad(
        [np.array([1, 2, 3]), np.array([4, 5, 6, 7, 8, 9, 10, 11, 12])], second_starts=[0, 4]
    )
    assert batch.input_ids.shape == (2, 16)
    assert batch.lengths.tolist() == [3, 9]
    assert batch.attention_mask.sum(axis=1).tolist() == [3, 9]
    assert batch.token_type_ids[1].tolist() == [0] * 4 + [1] * 5 + [0] * 7
    assert not batch.token_type_ids[0].any()
    assert batch.padded_tokens == 32


def test_each_device_has_one_budget_and_settings_override_it() -> None:
    assert default_budget(Device.CPU) == BatchBudget(32, 1024, min_fill=0.8)
    assert default_budget(Device.CPU, max_tokens=4096).max_tokens == 4096
    assert EngineConfig(max_batch_size=4).budget.max_rows == 4


def test_a_budget_too_small_for_one_long_text_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max_batch_tokens"):
        EngineConfig(max_sequence_length=512, max_batch_tokens=256)
