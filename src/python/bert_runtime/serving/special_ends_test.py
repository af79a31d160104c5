"""Special tokens added around a text here give exactly the ids tokenizers' post-processor gives."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors

from bert_runtime.config import Truncation, TruncationPolicy, TruncationSide
from bert_runtime.errors import InputTooLongError
from bert_runtime.serving.special_ends import SpecialEnds
from bert_runtime.serving.tokenizer import TextTokenizer
from bert_runtime.testutil import models as fixtures

# One tokenizer of each family.
FAMILIES = [
    fixtures.TINY_BERT,
    fixtures.TINY_DISTILBERT_MLM,
    fixtures.TINY_ELECTRA_MLM,
    fixtures.TINY_MODERNBERT_MLM,
    fixtures.TINY_MPNET_MLM,
    fixtures.TINY_ROBERTA_MLM,
    fixtures.TINY_ST,
]
PIECES = [
    "the",
    "Quick",
    "fox",
    "x" * 40,
    "3.14",
    "a,b;c",
    "café",
    "東京",
    "\t",
    "[MASK]",
    "<mask>",
    "[CLS] [SEP]",
    "<s>",
    "</s>",
    "<pad>",
    "[PAD]",
    "",
]
LIMIT = 12


def _texts(count: int) -> list[str]:
    """Empty, short, at the limit and far over it; special tokens written out; other scripts."""
    pick = random.Random(3)
    return ["", " "] + [" ".join(pick.choices(PIECES, k=pick.randint(1, 25))) for _ in range(count)]


def _full(source: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    tokenizer.no_padding()
    return tokenizer


@pytest.mark.parametrize("source", FAMILIES, ids=lambda path: path.name)
def test_token_ids_are_the_post_processors(source: Path) -> None:
    full = _full(source)
    assert SpecialEnds.of(full) is not None  # every family here takes this path
    tokenizer = TextTokenizer.from_dir(source, LIMIT, TruncationPolicy.TRUNCATE)
    texts = _texts(200)
    for side in TruncationSide:
        full.enable_truncation(LIMIT, direction=side.value)
        expected = [e.ids for e in full.encode_batch(texts)]
        assert max(map(len, expected)) == LIMIT  # some were cut
        truncation = Truncation(TruncationPolicy.TRUNCATE, side)
        # The ids below come from the copy without the post-processor, not the full tokenizer.
        assert tokenizer._resolve(truncation)[0].ends is not None
        assert [ids.tolist() for ids in tokenizer.encode(texts, truncation)] == expected
        alone = [tokenizer.encode([text], truncation)[0].tolist() for text in texts]
        assert alone == expected


@pytest.mark.parametrize("source", FAMILIES, ids=lambda path: path.name)
def test_without_truncation_a_long_text_is_refused_at_the_same_length(source: Path) -> None:
    full = _full(source)
    full.no_truncation()
    tokenizer = TextTokenizer.from_dir(source, LIMIT, TruncationPolicy.REJECT)
    assert tokenizer._resolve(None)[0].ends is not None
    for text in _texts(60):
        length = len(full.encode(text).ids)
        if length > LIMIT:
            with pytest.raises(InputTooLongError):
                tokenizer.encode([text])
        else:
            assert tokenizer.encode([text])[0].tolist() == full.encode(text).ids


def test_pairs_keep_the_post_processor() -> None:
    full = _full(fixtures.TINY_BERT)
    full.enable_truncation(LIMIT)
    tokenizer = TextTokenizer.from_dir(fixtures.TINY_BERT, LIMIT, TruncationPolicy.TRUNCATE)
    ((ids, second),) = tokenizer.encode_pairs([("the quick fox", "the lazy dog jumps over")])
    expected = full.encode("the quick fox", "the lazy dog jumps over")
    assert ids.tolist() == expected.ids
    assert second == expected.type_ids.index(1)


def test_other_post_processors_no_room_and_silent_probes_keep_the_tokenizers_own() -> None:
    other = _full(fixtures.TINY_BERT)
    other.post_processor = processors.ByteLevel(trim_offsets=True)
    assert SpecialEnds.of(other) is None
    # A vocabulary that turns the probe texts into no tokens at all: nothing places the ids.
    silent = _full(fixtures.TINY_BERT)
    silent.pre_tokenizer = pre_tokenizers.Split(" ", behavior="removed")
    silent.normalizer = normalizers.Replace(Regex(".*"), "")
    assert SpecialEnds.of(silent) is None
    no_room = _full(fixtures.TINY_BERT)
    no_room.enable_truncation(2)  # [CLS] and [SEP] alone
    assert SpecialEnds.of(no_room) is None
