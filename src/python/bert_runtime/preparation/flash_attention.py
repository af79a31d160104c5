"""
On CPU, attention that takes MLAS' flash kernel whether or not the batch has padding.

onnxruntime 1.31's CPU MultiHeadAttention takes the flash-attention kernel only when it has no key
padding mask and no attention bias (contrib_ops/cpu/bert/multihead_attention.cc); with a mask it
runs the unfused path, which took 15-20% longer on unpadded batches at MiniLM's and bert-base's
sizes, 3-11% on padded ones (bench/op_costs.py, docs/BENCHMARKS.md). So each MultiHeadAttention
whose only extra input is the mask, with a constant Q/K/V bias, becomes an If on "the mask is all
ones", computed once a run:

- unpadded (a text alone, texts of one length): the same node without the mask;
- padded: the mask moves into the heads. Each head's query gets one more element, 1, and each key
  one more, 0 for a token and PAD_SCORE for padding, so [q, 1] . [k, m] = q . k + m: a padded
  key's softmax weight is exactly 0 in fp32, as under the mask. The scale stays 1 / sqrt(head size)
  (the node's attribute; the wider head would change the default), the bias gets a 0 for the new
  elements, and values keep their head size.

Both branches run the flash kernel on the same numbers (the extra element adds an exact 0 for a
token), so a text's answer alone and in a padded batch stay as close as before. A padded batch pays
a copy of Q and K, which unpadded batches skip. Nodes without a constant bias (ModernBERT's) are
left as they are.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bert_runtime.preparation.onnx_builder import ATTENTION_MASK, MS_DOMAIN

# Added to a padded key's score before the scale (1 / sqrt(head size), at most 1): exp of anything
# below about -88 is 0 in fp32, and real scores stay within a few hundred.
PAD_SCORE = -1.0e4
UNPADDED = "batch_is_unpadded"
_MASK_SLOT = 4  # MultiHeadAttention: query, key, value, bias, key_padding_mask, attention_bias, ...


def flash_attention(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose maskable attention nodes run as described above."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    initializers = {init.name: init for init in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    columns: dict[int, tuple[str, str]] = {}  # by head count: the queries' and keys' new element
    for node in graph.node:
        bias = initializers.get(node.input[3]) if _maskable(node) else None
        if bias is None:
            nodes.append(node)
            continue
        heads = next(a.i for a in node.attribute if a.name == "num_heads")
        if not columns:
            nodes += _unpadded(graph)
        if heads not in columns:
            columns[heads] = _columns(nodes, graph, heads)
        padded = _keys_masked(node, graph, numpy_helper.to_array(bias), heads, columns[heads])
        nodes.append(_if_unpadded(node, padded))
    del graph.node[:]
    graph.node.extend(nodes)
    return result


def _maskable(node: onnx.NodeProto) -> bool:
    """MultiHeadAttention whose inputs end with the graph's padding mask."""
    return (
        node.op_type == "MultiHeadAttention"
        and node.domain == MS_DOMAIN
        and len(node.input) == _MASK_SLOT + 1
        and node.input[_MASK_SLOT] == ATTENTION_MASK
    )


def _const(graph: onnx.GraphProto, name: str, value: np.ndarray) -> str:
    graph.initializer.append(numpy_helper.from_array(value, name))
    return name


def _unpadded(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """UNPADDED: whether every mask value is 1."""
    one = _const(graph, "unpadded_one", np.array(1, np.int32))
    return [
        helper.make_node("ReduceMin", [ATTENTION_MASK], ["mask_min"], "mask_min", keepdims=0),
        helper.make_node("Equal", ["mask_min", one], [UNPADDED], UNPADDED),
    ]


def _columns(nodes: list[onnx.NodeProto], graph: onnx.GraphProto, heads: int) -> tuple[str, str]:
    """[batch, sequence, heads, 1]: ones for the queries, 0 or PAD_SCORE for the keys."""
    p = f"keys_mask_{heads}"
    one = _const(graph, f"{p}_one", np.array(1.0, np.float32))

    def op(op_type: str, inputs: list[str], out: str, **attributes: Any) -> None:
        nodes.append(helper.make_node(op_type, inputs, [f"{p}_{out}"], f"{p}_{out}", **attributes))

    op("Shape", [ATTENTION_MASK], "mask_shape")
    tail = _const(graph, f"{p}_tail", np.array([heads, 1], np.int64))
    op("Concat", [f"{p}_mask_shape", tail], "shape", axis=0)
    op("Cast", [ATTENTION_MASK], "keep", to=TensorProto.FLOAT)
    op("Sub", [one, f"{p}_keep"], "pad")  # 1 for padding, 0 for a token
    op(
        "Mul",
        [f"{p}_pad", _const(graph, f"{p}_pad_score", np.array(PAD_SCORE, np.float32))],
        "score",
    )
    op("Unsqueeze", [f"{p}_score", _const(graph, f"{p}_axes", np.array([2, 3], np.int64))], "col")
    op("Expand", [f"{p}_col", f"{p}_shape"], "keys")
    op("Expand", [one, f"{p}_shape"], "queries")
    return f"{p}_queries", f"{p}_keys"


def _keys_masked(
    node: onnx.NodeProto,
    graph: onnx.GraphProto,
    bias: np.ndarray,
    heads: int,
    columns: tuple[str, str],
) -> list[onnx.NodeProto]:
    """`node` on queries and keys one element wider per head, and without its mask."""
    head_size = len(bias) // 3 // heads
    p = node.name
    per_head = _const(graph, f"{p}_heads_shape", np.array([0, 0, heads, head_size], np.int64))
    flat = _const(graph, f"{p}_wide_shape", np.array([0, 0, heads * (head_size + 1)], np.int64))
    nodes: list[onnx.NodeProto] = []
    wide: list[str] = []
    for part, name, column in (("q", node.input[0], columns[0]), ("k", node.input[1], columns[1])):
        nodes += [
            helper.make_node("Reshape", [name, per_head], [f"{p}_{part}_heads"]),
            helper.make_node("Concat", [f"{p}_{part}_heads", column], [f"{p}_{part}_4d"], axis=3),
            helper.make_node("Reshape", [f"{p}_{part}_4d", flat], [f"{p}_{part}_wide"]),
        ]
        wide.append(f"{p}_{part}_wide")
    q_bias, k_bias, v_bias = bias.astype(np.float32).reshape(3, heads, head_size)
    zero = np.zeros((heads, 1), np.float32)
    wide_bias = np.concatenate(
        [np.hstack([q_bias, zero]).ravel(), np.hstack([k_bias, zero]).ravel(), v_bias.ravel()]
    )
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attributes.setdefault("scale", 1.0 / math.sqrt(head_size))
    inputs = [*wide, node.input[2], _const(graph, f"{p}_wide_bias", wide_bias)]
    nodes.append(
        helper.make_node(
            node.op_type,
            inputs,
            [f"{p}_keys_masked"],
            f"{p}_keys_masked",
            domain=node.domain,
            **attributes,
        )
    )
    return nodes


def _if_unpadded(node: onnx.NodeProto, padded: list[onnx.NodeProto]) -> onnx.NodeProto:
    """If(UNPADDED): `node` without its mask, else the `padded` nodes."""

    def branch(nodes: list[onnx.NodeProto], name: str) -> onnx.GraphProto:
        out = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)
        return helper.make_graph(nodes, name, [], [out])

    unmasked = helper.make_node(
        node.op_type,
        list(node.input[:_MASK_SLOT]),
        [f"{node.name}_unpadded"],
        f"{node.name}_unpadded",
    )
    unmasked.domain = node.domain
    unmasked.attribute.extend(node.attribute)
    return helper.make_node(
        "If",
        [UNPADDED],
        list(node.output),
        f"{node.name}_if_unpadded",
        then_branch=branch([unmasked], f"{node.name}_unpadded"),
        else_branch=branch(padded, f"{node.name}_keys_masked"),
    )
