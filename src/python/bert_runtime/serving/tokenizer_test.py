"""Special tokens and token strings; splitting a batch's rows into slices that fit a budget."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bert_runtime.config import TruncationPolicy
from bert_runtime.serving.tokenizer import TextTokenizer, padded_length, row_slices
from bert_runtime.testutil.models import TINY_ROBERTA_MLM


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


def _roberta_tokenizer_dir(tmp_path: Path, settings: Mapping[str, object] | None) -> Path:
    """tiny-roberta-mlm's tokenizer.json, with `settings` as tokenizer_config.json (None: none)."""
    shutil.copy(TINY_ROBERTA_MLM / "tokenizer.json", tmp_path / "tokenizer.json")
    if settings is not None:
        (tmp_path / "tokenizer_config.json").write_text(json.dumps(settings))
    return tmp_path


@pytest.mark.parametrize(
    "settings",
    [
        {"pad_token": "<pad>", "mask_token": "<mask>"},
        # Older files keep a token as an object with its text in "content".
        {"pad_token": {"content": "<pad>"}, "mask_token": {"content": "<mask>", "lstrip": True}},
        # Without a tokenizer_config.json, RoBERTa's names are found in the vocabulary.
        None,
    ],
)
def test_special_tokens_come_from_tokenizer_config_or_the_vocabulary(
    tmp_path: Path, settings: dict[str, object] | None
) -> None:
    tokenizer = TextTokenizer.from_dir(
        _roberta_tokenizer_dir(tmp_path, settings), 64, TruncationPolicy.TRUNCATE
    )
    assert (tokenizer.pad_id, tokenizer.mask_token, tokenizer.mask_id) == (1, "<mask>", 4)


def test_a_special_token_the_vocabulary_lacks_is_not_used(tmp_path: Path) -> None:
    settings = {"pad_token": "[nowhere]", "mask_token": "[nowhere]"}
    tokenizer = TextTokenizer.from_dir(
        _roberta_tokenizer_dir(tmp_path, settings), 64, TruncationPolicy.TRUNCATE
    )
    # The named tokens are not in the vocabulary: RoBERTa's own are found instead.
    assert (tokenizer.pad_id, tokenizer.mask_token) == (1, "<mask>")


def test_token_texts_decode_bytes_and_token_strings_keep_the_vocabulary(tmp_path: Path) -> None:
    tokenizer = TextTokenizer.from_dir(
        _roberta_tokenizer_dir(tmp_path, None), 64, TruncationPolicy.TRUNCATE
    )
    (ids,) = tokenizer.encode(["hello world"])
    assert tokenizer.token_strings(ids) == ["<s>", "he", "llo", "Ġworld", "</s>"]
    assert tokenizer.token_texts(ids) == ["<s>", "he", "llo", " world", "</s>"]
