"""
ModernBERT: its own graph (pre-norm, rotary positions with a global and a local base, GeGLU, a
global layer then two windowed ones, no biases), proved against transformers on the tiny-modernbert
fixtures, including a text that fills all 64 positions (distances far outside the window).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from bert_runtime.config import Pooling, Precision
from bert_runtime.errors import ModelSourceError, UnsupportedModelError
from bert_runtime.manifest import MODEL_NAME, read_manifest
from bert_runtime.preparation.model_config import read_config
from bert_runtime.preparation.prepare import prepare
from bert_runtime.testutil.models import (
    TINY_MODERNBERT_CLS,
    TINY_MODERNBERT_MLM,
    check_classification_goldens,
    check_fill_mask_goldens,
    check_hidden_state_goldens,
    check_token_id_goldens,
    fixture_engine,
    golden_long_text,
    golden_texts,
    goldens,
    padded_batch_vectors,
    prepared_model,
    with_config,
)

MLM = "tiny-modernbert-mlm"
CLS = "tiny-modernbert-cls"
LAYERS = 3
WINDOWED_LAYERS = 2


def _texts() -> list[str]:
    """The golden texts, and one of all 64 positions with a [MASK] near its end."""
    return [*golden_texts(), golden_long_text("modernbert")]


def test_tokenizer_ids_match_transformers(root: Path) -> None:
    engine = fixture_engine(prepared_model(root, MLM))
    check_token_id_goldens(engine, _texts(), "modernbert_input_ids")


def test_hidden_states_match_transformers_padded_beside_a_64_token_text(root: Path) -> None:
    check_hidden_state_goldens(fixture_engine(prepared_model(root, MLM)), MLM, _texts())


def test_fill_mask_matches_transformers_also_far_into_a_long_text(root: Path) -> None:
    engine = fixture_engine(prepared_model(root, MLM))
    checked = check_fill_mask_goldens(engine, MLM, _texts())
    assert len(_texts()) - 1 in [index for index, _ in checked]


def test_the_classifier_mean_pools_as_transformers_does(root: Path) -> None:
    path = prepared_model(root, CLS)
    assert read_manifest(path).heads == ["classification"]
    check_classification_goldens(fixture_engine(path), CLS)


def test_the_graph_states_its_fusions_and_windows_only_the_local_layers(root: Path) -> None:
    path = prepared_model(root, MLM)
    nodes = onnx.load(path / MODEL_NAME).graph.node
    ops = [node.op_type for node in nodes]
    attention = [node for node in nodes if node.op_type == "MultiHeadAttention"]
    assert len(attention) == LAYERS
    # The window is attention's sixth input, on the layers config.json's layer_types call sliding.
    windowed = [len(node.input) == 6 and node.input[5] == "window_bias" for node in attention]
    assert windowed == [False, True, True]
    assert ops.count("RotaryEmbedding") == 2 * LAYERS
    # On CPU no residual Add + norm is fused (optimize.py): the embeddings' norm, the attention
    # norms (the first layer's is an identity), the MLP norms, the final norm and the masked-LM
    # head's norm all stay LayerNormalization.
    assert ops.count("SkipLayerNormalization") == 0
    assert ops.count("LayerNormalization") == 1 + (LAYERS - 1) + LAYERS + 1 + 1
    assert read_manifest(path).fused_ops == {"MultiHeadAttention": LAYERS}
    assert "token_type_ids" not in [i.name for i in onnx.load(path / MODEL_NAME).graph.input]


def test_the_goldens_would_catch_a_missing_window(tmp_path: Path) -> None:
    """
    With a window wider than any text the short texts keep their goldens and the long one moves:
    the parity tests above see the window.
    """
    source = with_config(tmp_path, TINY_MODERNBERT_MLM, local_attention=128)
    config = json.loads((source / "config.json").read_text())
    assert config["layer_types"] == ["full_attention", "sliding_attention", "sliding_attention"]
    prepare(str(source), tmp_path / "out")
    vectors = padded_batch_vectors(fixture_engine(tmp_path / "out"), _texts(), Pooling.CLS)
    gold = goldens()
    moved = [
        float(np.abs(vector - gold[f"{MLM}/last_hidden_state/{i}"][0]).max())
        for i, vector in enumerate(vectors)
    ]
    assert moved[2] <= 1e-5  # "": [CLS] [SEP], inside any window
    assert moved[-1] > 1e-2


def test_transformers_4_config_format_reads_the_same(tmp_path: Path) -> None:
    """answerdotai/ModernBERT-base's config.json: no layer_types or rope_parameters."""
    config = json.loads((TINY_MODERNBERT_MLM / "config.json").read_text())
    del config["layer_types"], config["rope_parameters"]
    legacy = {**config, "global_rope_theta": 160000.0, "local_rope_theta": 10000.0}
    source = tmp_path / "v4"
    shutil.copytree(TINY_MODERNBERT_MLM, source)
    (source / "config.json").write_text(json.dumps(legacy))
    prepare(str(source), tmp_path / "out")
    check_hidden_state_goldens(fixture_engine(tmp_path / "out"), MLM, _texts())

    (source / "config.json").write_text(
        json.dumps({**legacy, "global_attn_every_n_layers": 2, "local_rope_theta": 500.0})
    )
    settings = read_config(source / "config.json").modernbert
    assert settings is not None
    assert settings.global_layers == (True, False, True)
    assert (settings.global_rope_theta, settings.local_rope_theta) == (160000.0, 500.0)
    assert settings.half_window == 4


def test_int8_quantizes_every_projection_and_stays_close(root: Path) -> None:
    path = prepared_model(root, MLM, Precision.INT8.value)
    ops = [node.op_type for node in onnx.load(path / MODEL_NAME).graph.node]
    # QKV, attention output, MLP in and out per layer, per row (quantize.py); the masked-LM head
    # runs on the mask rows only and stays fp32.
    assert ops.count("MatMulIntegerToFloat") == 4 * LAYERS
    engine = fixture_engine(path)
    gold = goldens()
    for i, vector in enumerate(padded_batch_vectors(engine, _texts(), Pooling.MEAN)):
        expected = gold[f"{MLM}/last_hidden_state/{i}"].mean(axis=0)
        cosine = vector @ expected / (np.linalg.norm(vector) * np.linalg.norm(expected))
        assert cosine >= 0.99, f"text {i}: cosine {cosine:.4f}"


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"hidden_activation": "silu"}, UnsupportedModelError, "hidden_activation 'silu'"),
        ({"classifier_pooling": "max"}, UnsupportedModelError, "classifier_pooling 'max'"),
        ({"classifier_activation": "silu"}, UnsupportedModelError, "classifier_activation"),
        (
            {"rope_parameters": {"full_attention": {"rope_type": "yarn", "rope_theta": 1.0}}},
            UnsupportedModelError,
            "rope_type 'yarn'",
        ),
        ({"layer_types": ["full_attention"]}, UnsupportedModelError, "layer_types must list 3"),
        (
            {"intermediate_size": 64},
            ModelSourceError,
            "layers.0.mlp.Wi.weight is [96, 32], but config.json says [128, 32]",
        ),
    ],
    ids=["activation", "pooling", "head-activation", "rope-type", "layer-types", "sizes"],
)
def test_what_the_graph_cannot_reproduce_is_refused(
    tmp_path: Path, changes: dict[str, object], error: type[Exception], message: str
) -> None:
    source = with_config(tmp_path, TINY_MODERNBERT_CLS, **changes)
    with pytest.raises(error, match=re.escape(message)):
        prepare(str(source), tmp_path / "out")
    assert not (tmp_path / "out").exists()
