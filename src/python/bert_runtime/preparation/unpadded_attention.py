"""
On CPU, attention without its padding mask whenever a batch has no padding.

onnxruntime 1.31's CPU MultiHeadAttention takes MLAS' flash-attention kernel only when it has no
key padding mask and no attention bias (contrib_ops/cpu/bert/multihead_attention.cc); with a
mask it runs the unfused path. A text alone, and a batch of texts of one length, have nothing to
mask, and flash attention took 13-16% less time than the masked path on such batches at
MiniLM's and bert-base's sizes (bench/op_costs.py, docs/BENCHMARKS.md). So each
MultiHeadAttention whose only extra input is the padding mask becomes an If on "the mask is all
ones", computed once a run: then the same node without the mask, else the node as it was. Both
branches read the same Q, K and V; no weight is copied. The two kernels round differently (about
1e-6 apart), and int8's per-row quantization can turn that into one step of a value, so a text's
int8 answer alone and inside a padded batch can differ slightly (all-MiniLM-L6-v2: cosine
0.99995); the int8 accuracy check measures exactly that against its 0.999 bound.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bert_runtime.preparation.onnx_builder import ATTENTION_MASK, MS_DOMAIN

UNPADDED = "batch_is_unpadded"
_MASK_SLOT = 4  # MultiHeadAttention: query, key, value, bias, key_padding_mask, attention_bias, ...


def unmasked_when_unpadded(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` with each maskable attention node wrapped as described above."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    nodes = [_if_unpadded(node) if _maskable(node) else node for node in graph.node]
    if not any(node.op_type == "If" and node.input[0] == UNPADDED for node in nodes):
        return result
    one = numpy_helper.from_array(np.array(1, np.int32), "mask_one")
    prelude = [
        helper.make_node("ReduceMin", [ATTENTION_MASK], ["mask_min"], "mask_min", keepdims=0),
        helper.make_node("Equal", ["mask_min", one.name], [UNPADDED], UNPADDED),
    ]
    del graph.node[:]
    graph.node.extend(prelude + nodes)
    graph.initializer.append(one)
    return result


def _maskable(node: onnx.NodeProto) -> bool:
    """MultiHeadAttention whose inputs end with the graph's padding mask."""
    return (
        node.op_type == "MultiHeadAttention"
        and node.domain == MS_DOMAIN
        and len(node.input) == _MASK_SLOT + 1
        and node.input[_MASK_SLOT] == ATTENTION_MASK
    )


def _if_unpadded(node: onnx.NodeProto) -> onnx.NodeProto:
    """`node` as If(unpadded): without its mask, else with it."""

    def branch(inputs: list[str], form: str) -> onnx.GraphProto:
        out = f"{node.output[0]}_{form}"
        attention = helper.make_node(
            node.op_type, inputs, [out], f"{node.name}_{form}", domain=node.domain
        )
        attention.attribute.extend(node.attribute)
        result = helper.make_tensor_value_info(out, TensorProto.FLOAT, None)
        return helper.make_graph([attention], f"{node.name}_{form}", [], [result])

    inputs = list(node.input)
    return helper.make_node(
        "If",
        [UNPADDED],
        list(node.output),
        f"{node.name}_if_unpadded",
        then_branch=branch(inputs[:_MASK_SLOT], "unmasked"),
        else_branch=branch(inputs, "masked"),
    )
