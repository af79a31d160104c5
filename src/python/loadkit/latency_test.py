from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadkit.latency import percentile, summarize_latencies


def test_percentiles_of_one_to_hundred() -> None:
    summary = summarize_latencies([float(v) for v in range(1, 101)])
    assert summary.count == 100
    assert summary.min_ms == 1.0
    assert summary.max_ms == 100.0
    assert summary.p50_ms == pytest.approx(50.5)
    assert summary.p99_ms == pytest.approx(99.01)
    assert summary.mean_ms == pytest.approx(50.5)


def test_single_sample_is_every_percentile() -> None:
    summary = summarize_latencies([7.0])
    assert (summary.p50_ms, summary.p99_ms, summary.max_ms) == (7.0, 7.0, 7.0)


def test_empty_and_negative_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="no latencies"):
        summarize_latencies([])
    with pytest.raises(ValueError, match=">= 0"):
        summarize_latencies([1.0, -1.0])


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200))
def test_percentiles_are_ordered_and_within_range(values: list[float]) -> None:
    s = summarize_latencies(values)
    assert s.min_ms <= s.p50_ms <= s.p90_ms <= s.p95_ms <= s.p99_ms <= s.max_ms


def test_equal_samples_give_exactly_that_value() -> None:
    # statistics.quantiles returns 93207.48748033821 here, above the maximum.
    assert summarize_latencies([93207.4874803382] * 2).p90_ms == 93207.4874803382


def test_percentile_matches_numpy_linear_method() -> None:
    values = [1.0, 2.0, 4.0, 8.0]
    # numpy.percentile(values, [0, 25, 50, 90, 100]) == [1, 1.75, 3, 6.8, 8]
    expected = [1.0, 1.75, 3.0, 6.8, 8.0]
    got = [percentile(values, q) for q in (0.0, 0.25, 0.5, 0.9, 1.0)]
    assert got == pytest.approx(expected)
    with pytest.raises(ValueError, match="fraction"):
        percentile(values, 1.5)
