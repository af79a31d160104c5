"""
DistilBERT: the same graph as BERT, proved against transformers on the tiny-distilbert fixtures (no
token types, no pooler, its own weight names and heads, sinusoidal positions in the masked-LM one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from safetensors.numpy import load_file, save_file

from bert_runtime.config import EngineConfig, Pooling, Precision
from bert_runtime.errors import UnsupportedModelError
from bert_runtime.manifest import MODEL_NAME, read_manifest
from bert_runtime.preparation.prepare import prepare
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.tasks import Classification, ClassifyRequest
from bert_runtime.testutil.models import (
    TINY_DISTILBERT_CLS,
    TINY_DISTILBERT_MLM,
    check_fill_mask_goldens,
    golden_pairs,
    golden_texts,
    goldens,
    padded_batch_vectors,
    prepared_model,
    score_rows,
    with_config,
)

MLM = "tiny-distilbert-mlm"
CLS = "tiny-distilbert-cls"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("distilbert")


def _engine(path: Path) -> Engine:
    return Engine(path, EngineConfig(max_sequence_length=64))


def test_fp32_hidden_states_match_transformers_in_a_padded_batch(root: Path) -> None:
    engine = _engine(prepared_model(root, MLM))
    gold = goldens()
    texts = golden_texts()
    cls_vectors = padded_batch_vectors(engine, texts, Pooling.CLS)
    mean_vectors = padded_batch_vectors(engine, texts, Pooling.MEAN)
    for i in range(len(texts)):
        hidden = gold[f"{MLM}/last_hidden_state/{i}"]
        assert np.abs(cls_vectors[i] - hidden[0]).max() <= 1e-4
        assert np.abs(mean_vectors[i] - hidden.mean(axis=0)).max() <= 1e-4


def test_fp32_fill_mask_matches_transformers(root: Path) -> None:
    engine = _engine(prepared_model(root, MLM))
    for _, result in check_fill_mask_goldens(engine, MLM):
        assert len(result.masks) == 2


def test_fp32_classification_matches_transformers(root: Path) -> None:
    engine = _engine(prepared_model(root, CLS))
    gold = goldens()
    texts = golden_texts()
    found = score_rows(engine.classify(texts))
    for i in range(len(texts)):
        assert np.abs(found[i] - gold[f"{CLS}/probabilities/{i}"]).max() <= 1e-4
    pairs = golden_pairs()
    found = score_rows(engine.classify_pairs(pairs))
    for i in range(len(pairs)):
        assert np.abs(found[i] - gold[f"{CLS}/pair_probabilities/{i}"]).max() <= 1e-4


def test_a_second_segment_changes_nothing_without_token_types(root: Path) -> None:
    """transformers gives DistilBERT no token types; marking a second text must change nothing."""
    engine = _engine(prepared_model(root, CLS))
    (ids,) = engine.tokenizer.encode(["the cat sat on the mat and the dog sat on the rug"])
    plain, marked = engine.run([ids, ids], [ClassifyRequest(), ClassifyRequest(5)])
    assert isinstance(plain, Classification) and isinstance(marked, Classification)
    assert plain.scores == marked.scores


def test_the_manifest_has_no_pooler_and_the_classifier_is_distilbert_s(root: Path) -> None:
    path = prepared_model(root, CLS)
    manifest = read_manifest(path)
    assert manifest.architecture == "DistilBertForSequenceClassification"
    assert manifest.heads == ["classification"]
    assert "pooler_output" not in manifest.outputs
    assert manifest.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    assert manifest.max_sequence_length == 64
    ops = [node.op_type for node in onnx.load(path / MODEL_NAME).graph.node]
    # pre_classifier's ReLU: the head BERT's pooler + classifier would not have.
    assert ops.count("Relu") == 1


def test_int8_embeddings_stay_close_to_transformers(root: Path) -> None:
    engine = _engine(prepared_model(root, MLM, Precision.INT8.value))
    gold = goldens()
    for i, vector in enumerate(padded_batch_vectors(engine, golden_texts(), Pooling.MEAN)):
        expected = gold[f"{MLM}/last_hidden_state/{i}"].mean(axis=0)
        cosine = vector @ expected / (np.linalg.norm(vector) * np.linalg.norm(expected))
        assert cosine >= 0.99


def test_a_distilbert_activation_it_cannot_build_is_named_by_distilbert_s_key(
    tmp_path: Path,
) -> None:
    source = with_config(tmp_path, TINY_DISTILBERT_CLS, activation="relu")
    with pytest.raises(UnsupportedModelError, match="activation 'relu' is not supported"):
        prepare(str(source), tmp_path / "out")


def test_a_distilbert_architecture_it_cannot_build_is_named(tmp_path: Path) -> None:
    source = with_config(
        tmp_path, TINY_DISTILBERT_MLM, architectures=["DistilBertForQuestionAnswering"]
    )
    with pytest.raises(
        UnsupportedModelError, match="supported for distilbert: DistilBertForMaskedLM"
    ):
        prepare(str(source), tmp_path / "out")


def test_a_distilbert_config_s_own_epsilon_is_ignored_as_transformers_does(
    tmp_path: Path, root: Path
) -> None:
    """transformers fixes DistilBERT's layer-norm epsilon at 1e-12, whatever config.json says."""
    source = with_config(tmp_path, TINY_DISTILBERT_CLS, layer_norm_eps=0.5)
    prepare(str(source), tmp_path / "out")
    texts = golden_texts()
    changed = score_rows(_engine(tmp_path / "out").classify(texts))
    unchanged = score_rows(_engine(prepared_model(root, CLS)).classify(texts))
    np.testing.assert_array_equal(changed, unchanged)


def test_a_distilbert_base_model_s_unprefixed_names_are_read(tmp_path: Path) -> None:
    """DistilBertModel saves `transformer.layer.N...` without the `distilbert.` prefix."""
    source = with_config(tmp_path, TINY_DISTILBERT_MLM, architectures=["DistilBertModel"])
    tensors = load_file(str(source / "model.safetensors"))
    encoder = {
        name.removeprefix("distilbert."): tensor
        for name, tensor in tensors.items()
        if name.startswith("distilbert.")
    }
    save_file(encoder, str(source / "model.safetensors"))
    manifest = prepare(str(source), tmp_path / "out")
    assert manifest.heads == []
    engine = _engine(tmp_path / "out")
    gold = goldens()
    for i, vector in enumerate(padded_batch_vectors(engine, golden_texts(), Pooling.CLS)):
        assert np.abs(vector - gold[f"{MLM}/last_hidden_state/{i}"][0]).max() <= 1e-4
