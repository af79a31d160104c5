"""
ELECTRA: BERT's graph with embeddings that may be narrower than the layers (projected), no pooler
and its own heads, proved against transformers on the tiny-electra fixtures (what every relative
must match is in relatives_test).
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
    TINY_ELECTRA_CLS,
    TINY_ELECTRA_MLM,
    fixture_engine,
    golden_texts,
    goldens,
    padded_batch_vectors,
    prepared_model,
    second_segment_scores,
    with_config,
)

MLM = "tiny-electra-mlm"
CLS = "tiny-electra-cls"


def test_narrow_embeddings_are_projected_to_the_layers_width(root: Path) -> None:
    path = prepared_model(root, MLM)
    manifest = read_manifest(path)
    assert (manifest.hidden_size, manifest.embedding_size) == (32, 32)
    assert manifest.heads == ["fill-mask"]
    weights = {i.name: i for i in onnx.load(path / MODEL_NAME).graph.initializer}
    assert list(weights["embeddings_project.weight_t"].dims) == [16, 32]
    assert list(weights["word_embeddings"].dims)[1] == 16


def test_the_classifier_is_electra_s_and_reads_token_types(root: Path) -> None:
    """ELECTRA keeps BERT's token types: unlike RoBERTa's, a marked second text changes scores."""
    path = prepared_model(root, CLS)
    ops = [node.op_type for node in onnx.load(path / MODEL_NAME).graph.node]
    assert "Tanh" not in ops  # neither BERT's pooler nor RoBERTa's head
    assert "pooler_output" not in read_manifest(path).outputs
    plain, marked = second_segment_scores(fixture_engine(path))
    assert plain != pytest.approx(marked, abs=1e-4)


def test_a_discriminator_checkpoint_serves_embeddings(tmp_path: Path) -> None:
    """google/electra-*-discriminator: ElectraForPreTraining, whose own head is not served."""
    source = with_config(tmp_path, TINY_ELECTRA_MLM, architectures=["ElectraForPreTraining"])
    tensors = load_file(str(source / "model.safetensors"))
    encoder = {name: tensor for name, tensor in tensors.items() if name.startswith("electra.")}
    encoder["discriminator_predictions.dense.weight"] = np.eye(32, dtype=np.float32)
    save_file(encoder, str(source / "model.safetensors"))
    manifest = prepare(str(source), tmp_path / "out")
    assert manifest.architecture == "ElectraForPreTraining"
    assert manifest.heads == []
    engine = fixture_engine(tmp_path / "out")
    for i, vector in enumerate(padded_batch_vectors(engine, golden_texts(), Pooling.CLS)):
        assert np.abs(vector - goldens()[f"{MLM}/last_hidden_state/{i}"][0]).max() <= 1e-4


def test_an_electra_architecture_it_cannot_build_is_named(tmp_path: Path) -> None:
    source = with_config(
        tmp_path, TINY_ELECTRA_CLS, architectures=["ElectraForTokenClassification"]
    )
    with pytest.raises(UnsupportedModelError, match="supported for electra: ElectraForMaskedLM"):
        prepare(str(source), tmp_path / "out")
