"""host_path_bench's model with no encoder layers: a real graph that costs next to nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from bert_api.bench.host_path_bench import texts, with_encoder_layers
from bert_runtime.preparation.prepare import prepare
from bert_runtime.serving.engine import Engine
from bert_runtime.testutil.models import TINY_BERT, TINY_DISTILBERT_MLM


@pytest.mark.parametrize("source", [TINY_BERT, TINY_DISTILBERT_MLM], ids=lambda p: p.name)
def test_no_encoder_layers_leaves_embeddings_and_pooling_only(tmp_path: Path, source: Path) -> None:
    checkpoint = with_encoder_layers(source, 0, tmp_path)
    prepared = tmp_path / "prepared"
    prepare(str(checkpoint), prepared)

    ops = [node.op_type for node in onnx.load(str(prepared / "model.onnx")).graph.node]
    assert not set(ops) & {"Attention", "MultiHeadAttention"}
    if source == TINY_BERT:  # no head either: embeddings, their norm, pooling, the pooler
        assert not set(ops) & {"Gelu", "BiasGelu"}
        assert ops.count("MatMul") <= 1
    vectors = Engine(prepared).embed(texts(4))
    assert vectors.shape[0] == 4
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Different texts, different embeddings: the graph still reads the tokens.
    assert not np.allclose(vectors[0], vectors[1])


def test_a_prepared_model_and_a_negative_count_are_refused(tmp_path: Path) -> None:
    prepared = tmp_path / "prepared"
    prepare(str(TINY_BERT), prepared)
    with pytest.raises(ValueError, match="needs a checkpoint"):
        with_encoder_layers(prepared, 0, tmp_path / "work")
    with pytest.raises(ValueError, match="0 or more"):
        with_encoder_layers(TINY_BERT, -1, tmp_path / "work")
