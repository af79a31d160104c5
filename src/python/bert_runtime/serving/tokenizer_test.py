"""Special tokens and token strings."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from bert_runtime.config import TruncationPolicy
from bert_runtime.serving.tokenizer import TextTokenizer
from bert_runtime.testutil.models import TINY_ROBERTA_MLM


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
