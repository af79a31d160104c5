"""
Tokenizers built from a checkpoint's older vocabulary files. The fixtures' tokenizer.json files are
transformers' own, so each is taken apart into vocab.txt or vocab.json + merges.txt, rebuilt from
those, and must encode and decode exactly as the original.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from bert_runtime.errors import MissingModelFilesError, ModelSourceError
from bert_runtime.preparation.families.registry import FAMILIES as REGISTRY
from bert_runtime.preparation.prepare import prepare
from bert_runtime.preparation.vocabulary_tokenizers import ROBERTA_BPE, TokenizerSettings
from bert_runtime.testutil.models import (
    TESTDATA,
    TINY_BERT,
    TINY_ROBERTA_MLM,
    with_config,
    with_vocabulary_files_only,
)

# One checkpoint per family that has a vocabulary format, by model type.
FAMILIES = {
    "bert": "tiny-bert",
    "distilbert": "tiny-distilbert-mlm",
    "electra": "tiny-electra-mlm",
    "mpnet": "tiny-mpnet-mlm",
    "roberta": "tiny-roberta-mlm",
}
# Pieces where the families differ: specials (whole, or inside words), whitespace around masks,
# accents, CJK, emoji, control and zero-width characters.
_PIECES = st.sampled_from(
    [
        "<mask>",
        " <mask>",
        "<mask> ",
        "[MASK]",
        " [MASK] ",
        "<s>",
        "</s>",
        "[CLS]",
        "[SEP]",
        "[UNK]",
        "<pad>",
        " ",
        "  ",
        "\t\n",
        "Café",
        "naïve",
        "中文",
        "🙂",
        "\u200b",
        "\x00",
        "hello",
        "World",
        "it's",
    ]
)
TEXTS = st.lists(st.one_of(st.text(max_size=8), _PIECES), max_size=8).map("".join)

Pair = tuple[Tokenizer, Tokenizer]


def _build(checkpoint: Path, model_type: str, **config: object) -> Tokenizer:
    """The tokenizer built from `checkpoint`'s vocabulary files with tokenizer_config `config`."""
    vocabulary = REGISTRY[model_type].vocabulary
    assert vocabulary is not None
    files = {name: checkpoint / name for name in vocabulary.files}
    return vocabulary.build(files, TokenizerSettings(config=config, special_tokens_map={}))


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pair]:
    """Per model type: (built from the vocabulary files, transformers' tokenizer.json)."""
    pairs = {}
    for model_type, name in FAMILIES.items():
        copy = tmp_path_factory.mktemp("vocabulary") / name
        shutil.copytree(TESTDATA / name, copy)
        with_vocabulary_files_only(copy)
        config = json.loads((copy / "tokenizer_config.json").read_text())
        pairs[model_type] = (
            _build(copy, model_type, **config),
            Tokenizer.from_file(str(TESTDATA / name / "tokenizer.json")),
        )
    return pairs


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=TEXTS, second=TEXTS)
def test_rebuilt_tokenizers_encode_texts_and_pairs_as_transformers_does(
    rebuilt: dict[str, Pair], first: str, second: str
) -> None:
    for model_type, (built, reference) in rebuilt.items():
        for texts in ((first,), (first, second)):
            got, want = built.encode(*texts), reference.encode(*texts)
            assert (got.ids, got.type_ids) == (want.ids, want.type_ids), (model_type, texts)


def test_rebuilt_tokenizers_decode_every_token_as_transformers_does(
    rebuilt: dict[str, Pair],
) -> None:
    for model_type, (built, reference) in rebuilt.items():
        assert built.get_vocab() == reference.get_vocab(), model_type
        for token_id in range(reference.get_vocab_size()):
            got = built.decode([token_id], skip_special_tokens=False)
            assert got == reference.decode([token_id], skip_special_tokens=False), model_type


@pytest.fixture
def roberta_files(tmp_path: Path) -> Path:
    copy = tmp_path / "roberta"
    shutil.copytree(TINY_ROBERTA_MLM, copy)
    return with_vocabulary_files_only(copy)


@pytest.mark.parametrize(
    "saved",
    [
        TokenizerSettings(
            config={"added_tokens_decoder": {"4": {"content": "<mask>", "lstrip": False}}},
            special_tokens_map={},
        ),
        TokenizerSettings(
            config={}, special_tokens_map={"mask_token": {"content": "<mask>", "lstrip": False}}
        ),
    ],
    ids=["added_tokens_decoder", "special_tokens_map"],
)
def test_saved_token_flags_override_the_family_s_defaults(
    roberta_files: Path, saved: TokenizerSettings
) -> None:
    """
    RoBERTa's <mask> takes the space before it by default; a checkpoint that saved it otherwise
    (transformers' added_tokens_decoder, or an object in special_tokens_map.json) keeps its own.
    """
    files = {name: roberta_files / name for name in ROBERTA_BPE.files}
    default = _build(roberta_files, "roberta")
    own = ROBERTA_BPE.build(files, saved)
    vocab = default.get_vocab()
    mask, space, a = vocab["<mask>"], vocab["\u0120"], vocab["a"]
    assert default.encode("a <mask>").ids == [0, a, mask, 2]
    assert own.encode("a <mask>").ids == [0, a, space, mask, 2]


def test_a_special_token_missing_from_the_vocabulary_is_refused(roberta_files: Path) -> None:
    """An id past the vocabulary would index past the model's embedding table."""
    with pytest.raises(ModelSourceError, match="vocab.json has no entry for the mask_token '<m>'"):
        _build(roberta_files, "roberta", mask_token="<m>")


def test_a_family_without_a_vocabulary_format_needs_tokenizer_json(
    tmp_path: Path, roberta_files: Path
) -> None:
    """XLM-R's tokenizer is sentencepiece's: BPE files under its name are refused, not guessed."""
    source = with_config(
        tmp_path, roberta_files, model_type="xlm-roberta", architectures=["XLMRobertaForMaskedLM"]
    )
    with pytest.raises(ModelSourceError, match="'xlm-roberta' needs tokenizer.json$"):
        prepare(str(source), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_another_family_s_vocabulary_is_refused(tmp_path: Path) -> None:
    """RoBERTa's rules need vocab.json + merges.txt; BERT's vocab.txt is not read as RoBERTa's."""
    source = tmp_path / "bert-as-roberta"
    shutil.copytree(TINY_BERT, source)
    with_vocabulary_files_only(source)
    source = with_config(tmp_path, source, model_type="roberta", architectures=["RobertaModel"])
    with pytest.raises(
        ModelSourceError, match="has vocab.txt but no tokenizer.json: model type 'roberta' needs"
    ) as raised:
        prepare(str(source), tmp_path / "out")
    assert str(raised.value).endswith("needs tokenizer.json or vocab.json + merges.txt")


def test_vocab_json_without_merges_is_named_missing(tmp_path: Path, roberta_files: Path) -> None:
    (roberta_files / "merges.txt").unlink()
    with pytest.raises(MissingModelFilesError) as raised:
        prepare(str(roberta_files), tmp_path / "out")
    assert raised.value.missing == ["tokenizer.json, vocab.txt or vocab.json + merges.txt"]
