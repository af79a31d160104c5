"""
RoBERTa and XLM-R: the same graph as BERT, proved against transformers on the tiny-roberta fixtures
(byte-level BPE, positions past the padding index, one token type, RoBERTa's own heads).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bert_runtime.config import Pooling
from bert_runtime.errors import InputError, UnsupportedModelError
from bert_runtime.manifest import read_manifest
from bert_runtime.preparation.prepare import prepare
from bert_runtime.testutil.models import (
    TINY_ROBERTA_CLS,
    TINY_ROBERTA_MLM,
    check_fill_mask_goldens,
    check_token_id_goldens,
    fixture_engine,
    golden_roberta_texts,
    golden_token_texts,
    padded_batch_vectors,
    prepared_model,
    score_rows,
    with_config,
    with_vocabulary_files_only,
)

MLM = "tiny-roberta-mlm"
CLS = "tiny-roberta-cls"


def test_tokenizer_ids_match_transformers(root: Path) -> None:
    engine = fixture_engine(prepared_model(root, MLM))
    check_token_id_goldens(engine, golden_roberta_texts(), "roberta_input_ids")


def test_a_checkpoint_with_only_vocab_json_and_merges_tokenizes_as_transformers_does(
    tmp_path: Path,
) -> None:
    """Byte-level BPE rebuilt from the older files: the same ids, masks and fill-mask answers."""
    source = with_vocabulary_files_only(with_config(tmp_path, TINY_ROBERTA_MLM))
    prepare(str(source), tmp_path / "out")
    engine = fixture_engine(tmp_path / "out")
    check_token_id_goldens(engine, golden_roberta_texts(), "roberta_input_ids")
    check_fill_mask_goldens(engine, MLM)


def test_fill_mask_tokens_are_decoded_as_transformers_pipeline_shows_them(root: Path) -> None:
    engine = fixture_engine(prepared_model(root, MLM))
    checked = check_fill_mask_goldens(engine, MLM)
    for i, result in checked:
        assert len(result.masks) == 2
        # Tokens as the pipeline shows them (decoded bytes), not the vocabulary's "Ġ..." entries.
        assert [[c.token for c in mask] for mask in result.masks] == golden_token_texts(MLM, i)


def test_a_text_without_the_mask_token_names_roberta_s(root: Path) -> None:
    engine = fixture_engine(prepared_model(root, MLM))
    assert engine.tokenizer.mask_token == "<mask>"
    assert engine.tokenizer.pad_id == 1
    with pytest.raises(InputError, match="text has no <mask> token"):
        engine.fill_mask(["a [MASK] is not roberta's"])


def test_input_limit_is_the_positions_past_the_padding_index(root: Path) -> None:
    """66 position rows, counted from pad_token_id + 1 = 2: 64 tokens, all of them usable."""
    path = prepared_model(root, MLM)
    assert read_manifest(path).max_sequence_length == 64
    engine = fixture_engine(path)
    long_text = " ".join(["the quick brown fox jumps over the lazy dog"] * 20)
    (ids,) = engine.tokenizer.encode([long_text])
    assert len(ids) == 64
    alone, beside_short = (
        padded_batch_vectors(engine, [long_text], Pooling.MEAN)[0],
        padded_batch_vectors(engine, [long_text, "hello"], Pooling.MEAN)[0],
    )
    assert np.isfinite(alone).all()
    np.testing.assert_allclose(alone, beside_short, atol=1e-5)


def test_xlm_roberta_is_read_as_the_same_network(tmp_path: Path, root: Path) -> None:
    source = with_config(
        tmp_path,
        TINY_ROBERTA_CLS,
        model_type="xlm-roberta",
        architectures=["XLMRobertaForSequenceClassification"],
    )
    manifest = prepare(str(source), tmp_path / "out")
    assert manifest.architecture == "XLMRobertaForSequenceClassification"
    assert manifest.heads == ["classification"]
    texts = golden_roberta_texts()
    xlm = score_rows(fixture_engine(tmp_path / "out").classify(texts))
    roberta = score_rows(fixture_engine(prepared_model(root, CLS)).classify(texts))
    np.testing.assert_allclose(xlm, roberta, atol=1e-6)


def test_a_roberta_architecture_it_cannot_build_is_named(tmp_path: Path) -> None:
    source = with_config(
        tmp_path, TINY_ROBERTA_CLS, architectures=["RobertaForTokenClassification"]
    )
    with pytest.raises(UnsupportedModelError, match="supported for roberta: RobertaForMaskedLM"):
        prepare(str(source), tmp_path / "out")
