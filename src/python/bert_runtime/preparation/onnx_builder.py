"""The ONNX graph builder every encoder and head builds on, and the tensor names they share.

It exists apart from graph.py so that the encoders (bert_encoder.py, modernbert_graph.py), the
pooling outputs and the heads each import the builder, and graph.py imports them: nothing imports
graph.py back. The names of the graph's inputs and of the tensors several modules read (the last
hidden state, the word embeddings the masked-LM decoder is tied to) are stated here once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bert_runtime.preparation.weights import Weights

OPSET = 17
MS_DOMAIN = "com.microsoft"

# The graph's inputs (int32, [batch, sequence]) and the tensors several modules read by name.
INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
TOKEN_TYPE_IDS = "token_type_ids"
INPUT_NAMES = (INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS)
LAST_HIDDEN_STATE = "last_hidden_state"
WORD_EMBEDDINGS = "word_embeddings"
# [0], the axis key_minus_query unsqueezes its key positions on (other modules reuse it).
ROW_AXIS = "row_axis"

# An activation as an operator and its domain (Gelu: erf-exact, as transformers' "gelu").
ACTIVATION_OPS = {"tanh": ("Tanh", ""), "gelu": ("Gelu", MS_DOMAIN), "relu": ("Relu", "")}


def nodes_within(nodes: Iterable[onnx.NodeProto]) -> Iterator[onnx.NodeProto]:
    """`nodes` and every node of their subgraphs (an If's branches), depth first."""
    for node in nodes:
        yield node
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from nodes_within(attribute.g.node)


@dataclass
class GraphBuilder:
    """Accumulates nodes and initializers; names are made unique by a counter."""

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    _count: int = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def op(
        self,
        op_type: str,
        inputs: list[str],
        name: str,
        *,
        n_out: int = 1,
        domain: str = "",
        **attributes: Any,
    ) -> list[str]:
        self._count += 1
        outputs = [f"{name}" if n_out == 1 else f"{name}_{i}" for i in range(n_out)]
        node_name = f"{name}_node{self._count}"
        self.nodes.append(
            helper.make_node(op_type, inputs, outputs, name=node_name, domain=domain, **attributes)
        )
        return outputs

    def linear(
        self, x: str, weights: Weights, prefix: str, name: str, *, optional_bias: bool = False
    ) -> str:
        """
        x @ W.T + b, with W stored pre-transposed ([in, out]) as MatMul wants it. With
        `optional_bias` (ModernBERT's layers, saved without biases) a missing bias is left out.
        """
        w = self.const(f"{prefix}.weight_t", weights.get(f"{prefix}.weight").T.copy())
        (product,) = self.op("MatMul", [x, w], f"{name}_matmul")
        if optional_bias and not weights.has(f"{prefix}.bias"):
            return product
        b = self.const(f"{prefix}.bias", weights.get(f"{prefix}.bias"))
        (out,) = self.op("Add", [product, b], f"{name}_bias")
        return out

    def layer_norm(
        self,
        x: str,
        weights: Weights,
        prefix: str,
        eps: float,
        name: str,
        *,
        optional_bias: bool = False,
    ) -> str:
        """LayerNormalization; with `optional_bias`, a norm saved without bias gets zeros."""
        scale = weights.get(f"{prefix}.weight")
        gamma = self.const(f"{prefix}.weight", scale)
        if optional_bias and not weights.has(f"{prefix}.bias"):
            beta = self.const(f"{prefix}.bias", np.zeros_like(scale))
        else:
            beta = self.const(f"{prefix}.bias", weights.get(f"{prefix}.bias"))
        (out,) = self.op("LayerNormalization", [x, gamma, beta], name, axis=-1, epsilon=eps)
        return out

    def activation(self, x: str, activation: str, name: str) -> str:
        """`x` through a named activation ("tanh", "gelu" or "relu")."""
        op_type, domain = ACTIVATION_OPS[activation]
        (out,) = self.op(op_type, [x], name, domain=domain)
        return out


def float_output(name: str, shape: list[str | int | None]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def key_minus_query(g: GraphBuilder) -> str:
    """[sequence, sequence] int64: key position - query position, for this batch's length."""
    (shape,) = g.op("Shape", [INPUT_IDS], "input_shape")
    (length,) = g.op("Gather", [shape, g.const("sequence_axis", np.array(1, np.int64))], "length")
    start = g.const("range_start", np.array(0, np.int64))
    step = g.const("range_step", np.array(1, np.int64))
    (positions,) = g.op("Range", [start, length, step], "positions")
    (keys,) = g.op("Unsqueeze", [positions, g.const(ROW_AXIS, np.array([0], np.int64))], "keys")
    (queries,) = g.op(
        "Unsqueeze", [positions, g.const("column_axis", np.array([1], np.int64))], "queries"
    )
    (distance,) = g.op("Sub", [keys, queries], "key_minus_query")
    return distance
