"""The ASCII shortcut gives exactly the token ids of the full path (tokenizers' own normalizer)."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
from tokenizers import Tokenizer, normalizers

from bert_runtime.config import Truncation, TruncationPolicy, TruncationSide
from bert_runtime.serving.ascii_shortcut import AsciiShortcut
from bert_runtime.serving.tokenizer import TextTokenizer
from bert_runtime.testutil.models import (
    TINY_BERT_MLM,
    TINY_DISTILBERT_MLM,
    TINY_ELECTRA_MLM,
    TINY_MPNET_MLM,
    TINY_ROBERTA_MLM,
    TINY_ST,
)

ALL_ASCII = "".join(map(chr, range(128)))
WORDS = ["the", "Quick", "BROWN", "fox", "jump", "##s", "x" * 120, "3.14", "e-mail", "a,b;c", "(x)"]
PIECES = ["\t", "\n", "\r", "\x00", "\x0b", "\x0c", "\x1b[31m", "\x7f", "  ", "'", '"', "!?"]
# BERT's added tokens as a text may hold them, and RoBERTa's (plain text to BERT).
SPECIALS = ["[MASK]", "[mask]", "[PAD]", "[CLS] [SEP]", "[MA\x00SK]", "[UNK]"]
OTHERS = ["<mask>", "<s>"]


@pytest.mark.parametrize(
    ("clean_text", "chinese", "strip_accents", "lowercase"),
    list(itertools.product([True, False], [True, False], [None, True, False], [True, False])),
)
def test_ascii_is_normalized_as_the_bert_normalizer_does(
    clean_text: bool, chinese: bool, strip_accents: bool | None, lowercase: bool
) -> None:
    reference = normalizers.BertNormalizer(
        clean_text=clean_text,
        handle_chinese_chars=chinese,
        strip_accents=strip_accents,
        lowercase=lowercase,
    )
    shortcut = AsciiShortcut(clean_text, lowercase, [])
    assert shortcut.normalized([ALL_ASCII]) == [reference.normalize_str(ALL_ASCII)]
    for char in ALL_ASCII:
        assert shortcut.normalized([char]) == [reference.normalize_str(char)], repr(char)


def _texts(seed: int, count: int) -> list[str]:
    pick = random.Random(seed)
    parts = WORDS + PIECES + SPECIALS + OTHERS
    return ["", " ", "\t\n"] + [
        " ".join(pick.choices(parts, k=pick.randint(1, 12))) for _ in range(count)
    ]


def _with_normalizer(tmp_path: Path, source: Path, **settings: bool) -> Path:
    """`source`'s tokenizer.json with its BertNormalizer's `settings` changed."""
    data = json.loads((source / "tokenizer.json").read_text())
    data["normalizer"].update(settings)
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    return tmp_path


@pytest.mark.parametrize(
    "source", [TINY_BERT_MLM, TINY_DISTILBERT_MLM, TINY_ELECTRA_MLM, TINY_MPNET_MLM]
)
@pytest.mark.parametrize("normalizer", [{}, {"lowercase": False}, {"clean_text": False}])
def test_token_ids_are_the_full_paths(
    tmp_path: Path, source: Path, normalizer: dict[str, bool]
) -> None:
    directory = _with_normalizer(tmp_path, source, **normalizer) if normalizer else source
    tokenizer = TextTokenizer.from_dir(directory, 16, TruncationPolicy.TRUNCATE)
    full = Tokenizer.from_file(str(directory / "tokenizer.json"))
    full.no_padding()
    shortcut = AsciiShortcut.of(full)
    assert shortcut is not None
    texts = _texts(0, 300)
    # Many take the shortcut, many not (else this test would not test it).
    shortcut_taken = sum(shortcut.normalized([text]) is not None for text in texts)
    assert 50 < shortcut_taken < 250
    for side in TruncationSide:
        full.enable_truncation(16, direction=side.value)
        expected = [e.ids for e in full.encode_batch(texts)]
        truncation = Truncation(TruncationPolicy.TRUNCATE, side)
        got = [ids.tolist() for ids in tokenizer.encode(texts, truncation)]
        assert got == expected
        alone = [tokenizer.encode([text], truncation)[0].tolist() for text in texts]
        assert alone == expected


def test_added_tokens_and_other_scripts_take_the_full_path() -> None:
    full = Tokenizer.from_file(str(TINY_BERT_MLM / "tokenizer.json"))
    shortcut = AsciiShortcut.of(full)
    assert shortcut is not None
    assert shortcut.normalized(["Paris is <mask>"]) == ["paris is <mask>"]
    for text in [*SPECIALS, "café", "naïve [x]", "東京"]:
        assert shortcut.normalized(["plain", f"a {text} b"]) is None, text
    tokenizer = TextTokenizer.from_dir(TINY_BERT_MLM, 32, TruncationPolicy.TRUNCATE)
    assert tokenizer.mask_id in tokenizer.encode(["Paris is the [MASK] of France"])[0]


@pytest.mark.parametrize("source", [TINY_ROBERTA_MLM, TINY_ST])
def test_other_normalizers_have_no_shortcut(source: Path) -> None:
    assert AsciiShortcut.of(Tokenizer.from_file(str(source / "tokenizer.json"))) is None
