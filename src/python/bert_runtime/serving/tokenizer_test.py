"""Splitting a batch's rows into slices that fit a padded-token budget."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from bert_runtime.serving.tokenizer import padded_length, row_slices


def _sizes(slices: list[slice]) -> list[int]:
    return [s.stop - s.start for s in slices]


def test_equal_rows_split_into_equal_slices_under_the_budget() -> None:
    assert _sizes(row_slices([128] * 32, 1024, 8, 512)) == [8, 8, 8, 8]
    assert _sizes(row_slices([32] * 32, 1024, 8, 512)) == [32]


def test_budget_is_counted_on_the_padded_shape() -> None:
    # Three rows of 5 tokens pad to 8 each: two fit in 16 tokens, the third starts a slice.
    assert _sizes(row_slices([5, 5, 5], 16, 8, 512)) == [2, 1]


def test_a_row_over_the_budget_runs_alone_and_zero_means_whole() -> None:
    assert _sizes(row_slices([10, 300, 10, 10], 64, 8, 512)) == [1, 1, 2]
    assert _sizes(row_slices([10, 300, 10, 10], 0, 8, 512)) == [4]


@given(
    lengths=st.lists(st.integers(1, 512), max_size=64),
    budget=st.integers(0, 4096),
    multiple=st.sampled_from([1, 8, 64]),
)
def test_slices_cover_every_row_in_order_and_fit_the_budget(
    lengths: list[int], budget: int, multiple: int
) -> None:
    slices = row_slices(lengths, budget, multiple, 512)
    assert [i for s in slices for i in range(s.start, s.stop)] == list(range(len(lengths)))
    for s in slices:
        rows = lengths[s]
        if budget and len(rows) > 1:
            assert len(rows) * padded_length(max(rows), multiple, 512) <= budget
    # Greedy: a slice ends only where the next row would have broken the budget.
    for current, following in itertools.pairwise(slices):
        rows = lengths[current.start : following.start + 1]
        assert len(rows) * padded_length(max(rows), multiple, 512) > budget > 0
