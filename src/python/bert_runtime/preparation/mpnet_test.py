"""
MPNet (the network of sentence-transformers' all-mpnet-base-v2): BERT's graph with RoBERTa's
positions and heads, no token types, and a relative position bias added in every attention,
proved against transformers on the tiny-mpnet fixtures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from bert_runtime.config import Pooling, Precision
from bert_runtime.errors import UnsupportedModelError
from bert_runtime.manifest import MODEL_NAME, read_manifest
from bert_runtime.preparation.prepare import prepare
from bert_runtime.preparation.relative_position import relative_position_buckets
from bert_runtime.testutil.models import (
    TESTDATA,
    TINY_MPNET_CLS,
    check_fill_mask_goldens,
    check_hidden_state_goldens,
    check_token_id_goldens,
    fixture_engine,
    golden_long_text,
    golden_roberta_texts,
    goldens,
    padded_batch_vectors,
    prepared_model,
    with_config,
    with_vocabulary_files_only,
)

MLM = "tiny-mpnet-mlm"
CLS = "tiny-mpnet-cls"
LAYERS = 2


def _texts() -> list[str]:
    """The golden texts with <mask>, and one that fills all 64 positions (distances up to 63)."""
    return [*golden_roberta_texts(), golden_long_text("mpnet")]


def test_relative_position_buckets_are_transformers(root: Path) -> None:
    """Every distance from -600 to 600: the exact range, each logarithmic step, the clamp."""
    distances = np.arange(-600, 601)
    np.testing.assert_array_equal(relative_position_buckets(distances), goldens()["mpnet_buckets"])


def test_tokenizer_ids_match_transformers(root: Path) -> None:
    engine = fixture_engine(prepared_model(root, MLM))
    check_token_id_goldens(engine, _texts(), "mpnet_input_ids")


def test_the_bias_is_cut_to_each_batch_s_length(root: Path) -> None:
    """Short texts padded beside a 64-token one (distances up to 63) match transformers."""
    engine = fixture_engine(prepared_model(root, MLM))
    texts = _texts()
    check_hidden_state_goldens(engine, MLM, texts)
    # Alone, a short text gets a shorter bias than beside the long one, and the same answer.
    alone = padded_batch_vectors(engine, texts[:1], Pooling.MEAN)[0]
    beside = padded_batch_vectors(engine, [texts[0], texts[-1]], Pooling.MEAN)[0]
    np.testing.assert_allclose(alone, beside, atol=1e-5)


def test_int8_quantizes_every_projection_and_keeps_the_bias(root: Path) -> None:
    """MPNet's attention is a quantized MatMul and then MHA, which adds the position bias."""
    path = prepared_model(root, MLM, Precision.INT8.value)
    nodes = onnx.load(path / MODEL_NAME).graph.node
    attention = [node for node in nodes if node.op_type == "MultiHeadAttention"]
    assert len(attention) == LAYERS
    assert all(node.input[5] == "relative_position_bias" for node in attention)
    ops = [node.op_type for node in nodes]
    assert "QAttention" not in ops and "Attention" not in ops
    # Q, K, V, attention output, FFN in and out per layer, per row (quantize.py); the masked-LM
    # head runs on the mask rows only and stays fp32.
    assert ops.count("MatMulIntegerToFloat") == 6 * LAYERS
    engine = fixture_engine(path)
    gold = goldens()
    for i, vector in enumerate(padded_batch_vectors(engine, _texts(), Pooling.MEAN)):
        expected = gold[f"{MLM}/last_hidden_state/{i}"].mean(axis=0)
        cosine = vector @ expected / (np.linalg.norm(vector) * np.linalg.norm(expected))
        assert cosine >= 0.99


def test_the_manifest_names_mpnet_and_the_positions_past_padding(root: Path) -> None:
    manifest = read_manifest(prepared_model(root, CLS))
    assert manifest.architecture == "MPNetForSequenceClassification"
    assert manifest.heads == ["classification"]
    assert manifest.max_sequence_length == 64


def test_a_bucket_count_transformers_would_not_use_is_refused(tmp_path: Path) -> None:
    source = with_config(tmp_path, TINY_MPNET_CLS, relative_attention_num_buckets=64)
    with pytest.raises(UnsupportedModelError, match="relative_attention_num_buckets 64"):
        prepare(str(source), tmp_path / "out")


def test_a_checkpoint_with_only_vocab_txt_tokenizes_as_transformers_does(tmp_path: Path) -> None:
    """MPNet's vocab.txt gets MPNet's framing (<s> ... </s>, <mask> taking the space before it)."""
    source = with_vocabulary_files_only(with_config(tmp_path, TESTDATA / MLM))
    prepare(str(source), tmp_path / "out")
    engine = fixture_engine(tmp_path / "out")
    check_token_id_goldens(engine, _texts(), "mpnet_input_ids")
    check_fill_mask_goldens(engine, MLM)
