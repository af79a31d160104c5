"""
MPNet (the network of sentence-transformers' all-mpnet-base-v2): BERT's graph with RoBERTa's
positions and heads, no token types, and a relative position bias added in every attention,
proved against transformers on the tiny-mpnet fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from bert_runtime.config import EngineConfig, Pooling, Precision
from bert_runtime.errors import UnsupportedModelError
from bert_runtime.manifest import MODEL_NAME, read_manifest
from bert_runtime.preparation.prepare import prepare
from bert_runtime.preparation.relative_position import relative_position_buckets
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.tasks import Classification, ClassifyRequest
from bert_runtime.testutil.models import (
    TESTDATA,
    TINY_MPNET_CLS,
    check_fill_mask_goldens,
    golden_pairs,
    golden_roberta_texts,
    goldens,
    padded_batch_vectors,
    prepared_model,
    score_rows,
    with_config,
)

MLM = "tiny-mpnet-mlm"
CLS = "tiny-mpnet-cls"
LAYERS = 2


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mpnet")


def _engine(path: Path) -> Engine:
    return Engine(path, EngineConfig(max_sequence_length=64))


def _texts() -> list[str]:
    """The golden texts with <mask>, and one that fills all 64 positions (distances up to 63)."""
    long_text: str = json.loads((TESTDATA / "goldens.json").read_text())["mpnet_long_text"]
    return [*golden_roberta_texts(), long_text]


def test_relative_position_buckets_are_transformers(root: Path) -> None:
    """Every distance from -600 to 600: the exact range, each logarithmic step, the clamp."""
    distances = np.arange(-600, 601)
    np.testing.assert_array_equal(relative_position_buckets(distances), goldens()["mpnet_buckets"])


def test_tokenizer_ids_match_transformers(root: Path) -> None:
    engine = _engine(prepared_model(root, MLM))
    for index, ids in enumerate(engine.tokenizer.encode(_texts())):
        np.testing.assert_array_equal(ids, goldens()[f"mpnet_input_ids/{index}"])


def test_fp32_hidden_states_match_transformers_in_a_padded_batch(root: Path) -> None:
    """Short texts padded beside a 64-token one: the bias is cut to each batch's length."""
    engine = _engine(prepared_model(root, MLM))
    gold = goldens()
    texts = _texts()
    cls_vectors = padded_batch_vectors(engine, texts, Pooling.CLS)
    mean_vectors = padded_batch_vectors(engine, texts, Pooling.MEAN)
    assert len(cls_vectors) == len(texts) == 7
    for i in range(len(texts)):
        hidden = gold[f"{MLM}/last_hidden_state/{i}"]
        assert np.abs(cls_vectors[i] - hidden[0]).max() <= 1e-4
        assert np.abs(mean_vectors[i] - hidden.mean(axis=0)).max() <= 1e-4
    # Alone, the short texts get a shorter bias than in the batch above, and the same answer.
    alone = padded_batch_vectors(engine, texts[:1], Pooling.MEAN)[0]
    np.testing.assert_allclose(alone, mean_vectors[0], atol=1e-5)


def test_fp32_fill_mask_matches_transformers(root: Path) -> None:
    engine = _engine(prepared_model(root, MLM))
    assert engine.tokenizer.mask_token == "<mask>"
    for _, result in check_fill_mask_goldens(engine, MLM):
        assert len(result.masks) == 2


def test_fp32_classification_matches_transformers(root: Path) -> None:
    engine = _engine(prepared_model(root, CLS))
    gold = goldens()
    texts = golden_roberta_texts()
    found = score_rows(engine.classify(texts))
    for i in range(len(texts)):
        assert np.abs(found[i] - gold[f"{CLS}/probabilities/{i}"]).max() <= 1e-4
    pairs = golden_pairs()
    found = score_rows(engine.classify_pairs(pairs))
    for i in range(len(pairs)):
        assert np.abs(found[i] - gold[f"{CLS}/pair_probabilities/{i}"]).max() <= 1e-4


def test_a_second_segment_changes_nothing_without_token_types(root: Path) -> None:
    engine = _engine(prepared_model(root, CLS))
    (ids,) = engine.tokenizer.encode(["the cat sat on the mat and the dog sat on the rug"])
    plain, marked = engine.run([ids, ids], [ClassifyRequest(), ClassifyRequest(5)])
    assert isinstance(plain, Classification) and isinstance(marked, Classification)
    assert plain.scores == marked.scores


def test_int8_keeps_the_biased_attention_in_fp32_and_stays_close(root: Path) -> None:
    """QAttention has no bias input: quantizing attention would silently drop the bias."""
    path = prepared_model(root, MLM, Precision.INT8.value)
    nodes = onnx.load(path / MODEL_NAME).graph.node
    attention = [node for node in nodes if node.op_type == "Attention"]
    assert len(attention) == LAYERS
    assert all(node.input[5] == "relative_position_bias" for node in attention)
    assert "QAttention" not in [node.op_type for node in nodes]
    assert "MatMulInteger" in [node.op_type for node in nodes]
    engine = _engine(path)
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
