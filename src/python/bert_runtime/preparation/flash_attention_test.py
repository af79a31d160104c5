"""
flash_attention.py on a real ONNX Runtime session: an unpadded batch runs attention without its
mask, a padded one with the mask in its keys, neither with a mask input (what keeps MLAS' flash
kernel out), both with the masked node's answers, and attention with a bias is left alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from bert_runtime.preparation.flash_attention import UNPADDED, flash_attention
from bert_runtime.preparation.onnx_builder import ATTENTION_MASK, MS_DOMAIN

BATCH, SEQUENCE, HEADS, HEAD_SIZE = 2, 5, 2, 4
HIDDEN = HEADS * HEAD_SIZE


def _attention_model(with_bias_layer: bool = False, dynamic: bool = False) -> onnx.ModelProto:
    """
    One masked attention over q, k, v; optionally a second one that also takes a bias. `dynamic`
    leaves batch and sequence unnamed sizes, for runs at other shapes.
    """
    nodes = [
        helper.make_node(
            "MultiHeadAttention",
            ["q", "k", "v", "qkv_bias", ATTENTION_MASK],
            ["y"],
            "l0_attention",
            domain=MS_DOMAIN,
            num_heads=HEADS,
        )
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    rng = np.random.default_rng(0)
    initializers = [
        numpy_helper.from_array(rng.standard_normal(3 * HIDDEN).astype(np.float32), "qkv_bias"),
        numpy_helper.from_array(
            rng.standard_normal((1, HEADS, SEQUENCE, SEQUENCE)).astype(np.float32), "pair_bias"
        ),
    ]
    if with_bias_layer:
        nodes.append(
            helper.make_node(
                "MultiHeadAttention",
                ["q", "k", "v", "qkv_bias", ATTENTION_MASK, "pair_bias"],
                ["z"],
                "l1_attention",
                domain=MS_DOMAIN,
                num_heads=HEADS,
            )
        )
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    shape: list[int | str] = ["batch", "sequence", HIDDEN] if dynamic else [BATCH, SEQUENCE, HIDDEN]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "qkv"]
    inputs.append(helper.make_tensor_value_info(ATTENTION_MASK, TensorProto.INT32, shape[:2]))
    graph = helper.make_graph(nodes, "attention", inputs, outputs, initializers)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(MS_DOMAIN, 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=9)


def _feeds(mask: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    feeds = {n: rng.standard_normal((BATCH, SEQUENCE, HIDDEN)).astype(np.float32) for n in "qkv"}
    feeds[ATTENTION_MASK] = mask.astype(np.int32)
    return feeds


def _run(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray], profile_dir: Path | None = None
) -> tuple[list[np.ndarray], set[str]]:
    """The outputs, and the names of the nodes that ran (from ONNX Runtime's profiler)."""
    options = ort.SessionOptions()
    if profile_dir is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_dir / "profile")
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    outputs = [np.asarray(o) for o in session.run(None, feeds)]
    ran: set[str] = set()
    if profile_dir is not None:
        events = json.loads(Path(session.end_profiling()).read_text())
        suffix = "_kernel_time"
        ran = {e["name"][: -len(suffix)] for e in events if e["name"].endswith(suffix)}
    return outputs, ran


def _branch(model: onnx.ModelProto, name: str) -> onnx.GraphProto:
    (wrapped,) = (node for node in model.graph.node if node.op_type == "If")
    (graph,) = (a.g for a in wrapped.attribute if a.name == name)
    assert isinstance(graph, onnx.GraphProto)
    return graph


def test_an_unpadded_batch_runs_attention_without_the_mask(tmp_path: Path) -> None:
    model = _attention_model()
    feeds = _feeds(np.ones((BATCH, SEQUENCE)))
    (masked,), _ = _run(model, feeds)
    rewritten = flash_attention(model)
    (unmasked,), ran = _run(rewritten, feeds, tmp_path)
    assert "l0_attention_unpadded" in ran and "l0_attention_keys_masked" not in ran
    assert ATTENTION_MASK not in _branch(rewritten, "then_branch").node[0].input
    np.testing.assert_allclose(unmasked, masked, rtol=0, atol=1e-5)


def test_a_padded_batch_runs_attention_with_the_mask_in_its_keys(tmp_path: Path) -> None:
    model = _attention_model()
    lengths = [SEQUENCE, 3]
    mask = (np.arange(SEQUENCE)[None, :] < np.array(lengths)[:, None]).astype(np.int32)
    feeds = _feeds(mask)
    (masked,), _ = _run(model, feeds)
    rewritten = flash_attention(model)
    (in_keys,), ran = _run(rewritten, feeds, tmp_path)
    assert "l0_attention_keys_masked" in ran and "l0_attention_unpadded" not in ran
    (attention,) = (n for n in _branch(rewritten, "else_branch").node if n.domain == MS_DOMAIN)
    assert ATTENTION_MASK not in attention.input and len(attention.input) == 4
    for row, length in enumerate(lengths):  # a padded position's own output is never read
        np.testing.assert_allclose(in_keys[row, :length], masked[row, :length], rtol=0, atol=1e-5)


def test_a_text_alone_and_in_a_padded_batch_agree() -> None:
    """The alone run takes the unpadded branch and the batch the other: the same numbers."""
    rewritten = flash_attention(_attention_model(dynamic=True))
    mask = np.ones((BATCH, SEQUENCE), np.int32)
    mask[1, 3:] = 0
    feeds = _feeds(mask)
    (batched,), _ = _run(rewritten, feeds)
    alone_feeds = {name: value[1:, :3] for name, value in feeds.items()}
    (alone,), _ = _run(rewritten, alone_feeds)
    np.testing.assert_allclose(alone[0], batched[1, :3], rtol=0, atol=1e-6)


def test_attention_with_a_bias_is_left_as_it_is() -> None:
    """The bias would keep MLAS' flash kernel out anyway, mask or none."""
    rewritten = flash_attention(_attention_model(with_bias_layer=True))
    ops = [node.op_type for node in rewritten.graph.node]
    assert ops.count("If") == 1 and ops[-1] == "MultiHeadAttention"
    assert [node for node in rewritten.graph.node if node.op_type == "If"][0].input == [UNPADDED]
    feeds = _feeds(np.ones((BATCH, SEQUENCE)))
    np.testing.assert_array_equal(
        _run(rewritten, feeds)[0][1], _run(_attention_model(with_bias_layer=True), feeds)[0][1]
    )


def test_a_graph_without_maskable_attention_is_unchanged() -> None:
    model = _attention_model()
    model.graph.node[0].input.pop()  # no mask at all
    assert flash_attention(model) == model
