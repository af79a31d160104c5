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

from bert_runtime.config import Pooling
from bert_runtime.errors import UnsupportedModelError
from bert_runtime.manifest import MODEL_NAME, read_manifest
from bert_runtime.preparation.prepare import prepare
from bert_runtime.testutil.models import (
    TINY_DISTILBERT_CLS,
    TINY_DISTILBERT_MLM,
    fixture_engine,
    golden_texts,
    goldens,
    padded_batch_vectors,
    prepared_model,
    score_rows,
    with_config,
)

MLM = "tiny-distilbert-mlm"
CLS = "tiny-distilbert-cls"


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
    changed = score_rows(fixture_engine(tmp_path / "out").classify(texts))
    unchanged = score_rows(fixture_engine(prepared_model(root, CLS)).classify(texts))
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
    engine = fixture_engine(tmp_path / "out")
    gold = goldens()
    for i, vector in enumerate(padded_batch_vectors(engine, golden_texts(), Pooling.CLS)):
        assert np.abs(vector - gold[f"{MLM}/last_hidden_state/{i}"][0]).max() <= 1e-4
