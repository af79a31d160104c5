"""
The CUDA graph changes, proved on CPU: the 1-D mask gives the same outputs as the 2-D one for every
family (and transformers' hidden states), and packing mode converts what it can and refuses the
rest. What they buy on a GPU is gpu_bench's to measure.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from bert_runtime.config import Device, EngineConfig, Precision
from bert_runtime.cuda_options import CudaOptions
from bert_runtime.errors import ConfigError, UnsupportedModelError
from bert_runtime.manifest import MODEL_NAME
from bert_runtime.preparation import cuda_attention, sources
from bert_runtime.preparation.prepare import cache_key, prepare
from bert_runtime.serving.engine import Engine
from bert_runtime.testutil.models import (
    MODEL_NAMES,
    MODERNBERT_NAMES,
    TESTDATA,
    check_hidden_state_goldens,
    fixture_engine,
    prepared_model,
    texts_for,
)

FAMILIES = (*MODEL_NAMES, *MODERNBERT_NAMES)
_MASK_SLOT = {"Attention": 3, "MultiHeadAttention": 4}


def _masks_read(model: onnx.ModelProto) -> set[str]:
    return {
        node.input[_MASK_SLOT[node.op_type]]
        for node in model.graph.node
        if node.op_type in _MASK_SLOT
    }


def _right_padded_feeds(model: onnx.ModelProto, vocab: int) -> dict[str, np.ndarray]:
    """Five rows of 16 positions holding 16, 3, 9, 1 and 12 tokens, padding on the right."""
    rng = np.random.default_rng(0)
    lengths = np.array([16, 3, 9, 1, 12])
    mask = (np.arange(16) < lengths[:, None]).astype(np.int32)
    ids = rng.integers(5, vocab, size=mask.shape).astype(np.int32) * mask
    types = np.zeros_like(ids)
    types[0, 8:] = 1
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    names = {graph_input.name for graph_input in model.graph.input}
    if "mask_positions" in names:
        feeds["mask_positions"] = np.array([[0, 2], [2, 4]], np.int64)
        feeds["top_k"] = np.array([3], np.int64)
    return {name: value for name, value in feeds.items() if name in names}


@pytest.mark.parametrize("name", FAMILIES)
def test_the_one_dimensional_mask_gives_the_same_outputs_on_cpu(root: Path, name: str) -> None:
    model = onnx.load(prepared_model(root, name) / MODEL_NAME)
    rewired = onnx.ModelProto()
    rewired.CopyFrom(model)
    assert cuda_attention.use_sequence_lengths(rewired) >= 2
    assert _masks_read(model) == {"attention_mask"}
    assert "attention_mask" not in _masks_read(rewired) and len(_masks_read(rewired)) == 1
    onnx.checker.check_model(rewired)

    vocab = json.loads((TESTDATA / name / "config.json").read_text())["vocab_size"]
    feeds = _right_padded_feeds(model, vocab)
    outputs = [output.name for output in model.graph.output]
    cpu = ["CPUExecutionProvider"]
    before = ort.InferenceSession(model.SerializeToString(), providers=cpu).run(outputs, feeds)
    after = ort.InferenceSession(rewired.SerializeToString(), providers=cpu).run(outputs, feeds)
    attended = feeds["attention_mask"].astype(bool)
    for output, old, new in zip(outputs, before, after, strict=True):
        if output == "last_hidden_state":  # padding positions are never read
            old, new = old[attended], new[attended]
        np.testing.assert_allclose(new, old, rtol=0, atol=1e-6, err_msg=output)


def test_a_graph_without_the_2d_mask_is_left_alone(root: Path) -> None:
    model = onnx.load(prepared_model(root, "tiny-bert") / MODEL_NAME)
    cuda_attention.use_sequence_lengths(model)
    again = onnx.ModelProto()
    again.CopyFrom(model)
    assert cuda_attention.use_sequence_lengths(again) == 0
    assert again == model


@pytest.mark.parametrize(
    "name",
    [
        "tiny-bert",
        "tiny-roberta-mlm",
        "tiny-distilbert-mlm",
        "tiny-electra-mlm",
        "tiny-mpnet-mlm",
        "tiny-modernbert-mlm",
    ],
)
def test_a_model_prepared_for_cuda_has_the_1d_mask_and_meets_transformers(
    tmp_path: Path, name: str
) -> None:
    # fp32 for CUDA also runs on CPU: the graph CUDA will serve, against transformers' goldens.
    manifest = prepare(str(TESTDATA / name), tmp_path / name, device=Device.CUDA)
    assert manifest.extra["attention_mask"] == "sequence_lengths"
    assert "attention_mask" not in _masks_read(onnx.load(tmp_path / name / MODEL_NAME))
    check_hidden_state_goldens(fixture_engine(tmp_path / name), name, texts_for(name))


def test_cpu_models_keep_the_2d_mask_and_their_cache_key(root: Path) -> None:
    files = sources.fetch(str(TESTDATA / "tiny-bert"), None)
    cpu = cache_key(files, Device.CPU, Precision.FP32)
    assert cpu == cache_key(files, Device.CPU, Precision.FP32, packing=False)
    assert _masks_read(onnx.load(prepared_model(root, "tiny-bert") / MODEL_NAME)) == {
        "attention_mask"
    }
    cuda = cache_key(files, Device.CUDA, Precision.FP16)
    assert cuda != cache_key(files, Device.CUDA, Precision.FP16, packing=True)


@pytest.fixture(scope="module")
def packed(root: Path) -> Path:
    out = root / "tiny-bert-packed"
    prepare(
        str(TESTDATA / "tiny-bert"), out, device=Device.CUDA, precision=Precision.FP16, packing=True
    )
    return out


def test_packing_mode_replaces_every_attention(packed: Path) -> None:
    ops = [node.op_type for node in onnx.load(packed / MODEL_NAME).graph.node]
    assert ops.count("PackedAttention") == 2 and "Attention" not in ops
    assert ops.count("RemovePadding") == ops.count("RestorePadding") == 1
    # RemovePadding takes the per-row token counts: the 1-D mask comes first.
    remove = next(
        n for n in onnx.load(packed / MODEL_NAME).graph.node if n.op_type == "RemovePadding"
    )
    assert remove.input[1] == "embeddings_1"


def test_a_packed_model_has_no_cpu_kernels_and_the_engine_says_so(packed: Path) -> None:
    with pytest.raises(Exception, match="RemovePadding|PackedAttention"):
        ort.InferenceSession(str(packed / MODEL_NAME), providers=["CPUExecutionProvider"])
    with pytest.raises(ConfigError, match="packed model runs on device cuda only"):
        Engine(packed, EngineConfig())
    graphs = EngineConfig(device=Device.CUDA, cuda=CudaOptions(graphs=True))
    with pytest.raises(ConfigError, match="cuda_graphs cannot run a packed model"):
        Engine(packed, graphs)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("tiny-bert-mlm", "head has one of its own"),
        ("tiny-mpnet-cls", "Attention graphs only"),
        ("tiny-modernbert-cls", "Attention graphs only"),
    ],
)
def test_packing_is_refused_where_it_would_break_the_graph(
    tmp_path: Path, name: str, reason: str
) -> None:
    with pytest.raises(UnsupportedModelError, match=reason):
        prepare(str(TESTDATA / name), tmp_path / "out", device=Device.CUDA, packing=True)
    assert not (tmp_path / "out").exists()


def test_packing_needs_cuda(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="packing needs device cuda"):
        prepare(str(TESTDATA / "tiny-bert"), tmp_path / "out", packing=True)
