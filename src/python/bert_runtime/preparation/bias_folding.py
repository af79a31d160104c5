"""
Which MatMul biases the int8 rewrite (quantize.py) can add inside its fp32 Gemm.

The Gemm that adds a quantized product's zero-point term and outlier channels takes one more row,
the bias, for next to nothing; the node that added the bias then goes (an Add) or becomes a plain
Gelu (a BiasGelu). That saves a pass over the product, or more: onnxruntime 1.31's CPU BiasGelu
(contrib_ops/cpu/bert/bias_gelu_fusion.cc) fills a temporary the size of its input and took 1.4-1.7x
as long as Gelu on the sum at [512, 1536] and [512, 3072] (bench/op_costs.py, docs/BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from bert_runtime.preparation.onnx_builder import MS_DOMAIN


@dataclass(frozen=True)
class FoldedBias:
    """A MatMul's bias that its int8 Gemm adds, and the node (Add or BiasGelu) that added it."""

    values: np.ndarray
    adder: onnx.NodeProto


def folded_biases(
    graph: onnx.GraphProto, is_product: Callable[[onnx.NodeProto], bool]
) -> dict[str, FoldedBias]:
    """
    By output of each node `is_product` picks (a MatMul by a constant [K, M] weight): the
    constant [M] bias that the output's only reader, an Add or a BiasGelu, adds to it.
    """
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    initializers = {init.name: init for init in graph.initializer}
    graph_outputs = {output.name for output in graph.output}
    found: dict[str, FoldedBias] = {}
    for node in graph.node:
        product = node.output[0]
        only_reader = readers.get(product, [])
        if not is_product(node) or product in graph_outputs or len(only_reader) != 1:
            continue
        bias = initializers.get(_bias_input(only_reader[0], product))
        if bias is not None and list(bias.dims) == [initializers[node.input[1]].dims[1]]:
            values = numpy_helper.to_array(bias).astype(np.float32)
            found[product] = FoldedBias(values, only_reader[0])
    return found


def _bias_input(reader: onnx.NodeProto, product: str) -> str:
    """The name of what `reader` adds to `product` ("" when it is no Add or BiasGelu of it)."""
    if len(reader.input) != 2 or product not in reader.input:
        return ""
    if reader.op_type == "Add" and reader.input[0] != reader.input[1]:
        return str(reader.input[1] if reader.input[0] == product else reader.input[0])
    if reader.op_type == "BiasGelu" and reader.domain == MS_DOMAIN and reader.input[0] == product:
        return str(reader.input[1])
    return ""
