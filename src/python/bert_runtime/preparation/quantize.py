"""int8 with one activation scale per token, and the few outlier channels kept in fp32.

Why not ONNX Runtime's `quantize_dynamic`: it gives each MatMul input one scale per tensor, that is
per batch. On real checkpoints a few input channels reach 50-100 while nearly every other value
stays under 3 (all-mpnet-base-v2: the layer-norm outputs' channels 555, 461, 568 and 756 in every
layer, and 1-4 GELU output channels per layer), so one scale leaves the ordinary values a handful
of steps (cosine to fp32 down to 0.70), and a text's answer depends on its batch-mates' ranges
(0.34 between a text alone and in a batch of 35). docs/BENCHMARKS.md has the measurements.

Here every encoder-layer MatMul `y = x @ W` becomes, per row (token) i of x:

    sc_i, zp_i = (max_i - min_i) / 255, round(-min_i / sc_i)   over the row's ordinary channels
    xq_i = QuantizeLinear(x_i, sc_i, zp_i)                       uint8, the outlier channels as 0
    y_i = sc_i * (xq_i @ Wq * ws) - sc_i * zp_i * colsum(Wq * ws) + x_i[C] @ W[C] (+ b)

Weights are int8, symmetric, one scale per output column (ws), no two neighbours above 128 steps
together (int8_weights: so CPUs without VNNI cannot saturate); the outlier channels C (found by
`calibration.py` on built-in texts, the same for every input) are left out of Wq and multiplied in
fp32 by one small Gemm that also applies the zero-point term and, where bias_folding.py finds one,
the bias b. Nothing depends on another row, so a text gets the same answer alone, in any batch and
in any CPU slice. MatMulIntegerToFloat runs the u8 x s8 product (VNNI where the CPU has it) and
multiplies by sc_i. ONNX's MatMulInteger allows a zero point per row of A,
but ONNX Runtime's CPU kernels take one per tensor (matmul_integer.cc: "input1 zero point must be a
scalar"), hence the colsum term. Per-token dynamic activation
quantization and outlier channels in higher precision are the schemes of LLM.int8() (Dettmers et
al., 2022); heads (pooler, classifier, fill-mask) run on a few rows and stay fp32.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bert_runtime.preparation.bias_folding import FoldedBias, folded_biases
from bert_runtime.preparation.onnx_builder import MS_DOMAIN, nodes_within

# The most two neighbouring int8 weights may add up to (int8_weights).
PAIR_STEPS = 128
# The encoder layers' projections, as both graph builders name them (l3_ffn_out_matmul, ...).
_LAYER_MATMUL = re.compile(r"^l\d+_\w+_matmul")
_SHARED: dict[str, np.ndarray] = {
    "q_zero_f": np.array(0.0, np.float32),
    "q_tiny_f": np.array(1e-30, np.float32),
    "q_levels_f": np.array(255.0, np.float32),
    "q_zero_u8": np.array(0, np.uint8),
    "q_column_axis": np.array([1], np.int64),
    "q_lead_start": np.array([0], np.int64),
    "q_lead_end": np.array([-1], np.int64),
}


def quantizable(node: onnx.NodeProto, initializers: Mapping[str, onnx.TensorProto]) -> bool:
    """An encoder layer's MatMul by a constant 2-D weight: what `quantize_per_row` rewrites."""
    weight = initializers.get(node.input[1]) if len(node.input) == 2 else None
    return (
        node.op_type == "MatMul"
        and bool(_LAYER_MATMUL.match(node.name))
        and weight is not None
        and len(weight.dims) == 2
    )


@dataclass
class _Rewriter:
    """Collects the new nodes and initializers of one rewrite."""

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def op(
        self, op_type: str, inputs: list[str], out: str, domain: str = "", **attributes: Any
    ) -> str:
        node = helper.make_node(op_type, inputs, [out], name=f"{out}_node", **attributes)
        node.domain = domain
        self.nodes.append(node)
        return out


def quantize_per_row(
    model: onnx.ModelProto, outliers: Mapping[str, np.ndarray] | None = None
) -> onnx.ModelProto:
    """
    A copy of `model` whose encoder-layer MatMuls are int8 as described above; `outliers` maps a
    MatMul's node name to the input channels it keeps in fp32 (none when absent).
    """
    outliers = outliers or {}
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    initializers = {init.name: init for init in graph.initializer}
    r = _Rewriter()
    for name, value in _SHARED.items():
        r.const(name, value)
    # MatMuls that read one tensor with the same outlier channels (int8's Q, K and V) share
    # its quantization.
    quantized: dict[tuple[str, bytes], _Rows] = {}
    biases = folded_biases(graph, lambda node: quantizable(node, initializers))
    bias_adders = {bias.adder.output[0]: bias for bias in biases.values()}
    for node in graph.node:
        if node.output[0] in bias_adders:
            # Its bias is now the Gemm's; a BiasGelu becomes a plain Gelu, an Add goes.
            if node.op_type == "BiasGelu":
                r.op("Gelu", [node.input[0]], node.output[0], domain=MS_DOMAIN)
            continue
        if not quantizable(node, initializers):
            r.nodes.append(node)
            continue
        weight = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float32)
        channels = np.asarray(outliers.get(node.name, ()), np.int64)
        key = (node.input[0], channels.tobytes())
        if key not in quantized:
            quantized[key] = _quantize_rows(r, node.name, node.input[0], len(weight), channels)
        _multiply(r, node, quantized[key], weight, channels, biases.get(node.output[0]))
    used = {name for node in nodes_within(r.nodes) for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.node[:]
    graph.node.extend(r.nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + [init for init in r.initializers if init.name in used])
    if not any(opset.domain == MS_DOMAIN for opset in result.opset_import):
        result.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return result


def int8_weights(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    int8 weights [K, M] and one scale per output column, with no two neighbouring inputs (2i,
    2i + 1) above PAIR_STEPS together. x86 CPUs without VNNI multiply u8 x s8 with vpmaddubsw,
    which adds such neighbours' products in 16 bits and saturates above 32767 (MLAS'
    QgemmU8S8KernelAvx2 and Avx512Core): 255 x 128 = 32640 fits, 255 x 254 would not, and on
    all-MiniLM-L6-v2 plain 8-bit weights saturate 0.02% of pairs, moving 4% of the outputs.
    VNNI, AMX and ARM add in 32 bits; the bound costs them almost nothing (all-mpnet-base-v2's
    min cosine to fp32 0.9971 without it, 0.9968 with it).
    """
    k, m = weight.shape
    magnitude = np.abs(weight)
    if k % 2:
        magnitude = np.vstack([magnitude, np.zeros((1, m), np.float32)])
    pairs = magnitude.reshape(-1, 2, m).sum(axis=1).max(axis=0)
    # |round(u)| + |round(v)| <= |u| + |v| + 1: a bound of PAIR_STEPS - 1 before rounding.
    scale = np.maximum(magnitude.max(axis=0) / 127.0, pairs / (PAIR_STEPS - 1))
    scale = np.maximum(scale, 1e-30).astype(np.float32)
    return np.clip(np.rint(weight / scale), -127, 127).astype(np.int8), scale


@dataclass(frozen=True)
class _Rows:
    """A MatMul input quantized per row: the tensors every MatMul that reads it multiplies by."""

    quantized: str  # uint8 [rows, k], the outlier channels as 0
    scale: str  # [rows, 1]
    factors: str  # [x[:, C] | scale * zero | 1]: the left side of the fp32 Gemm
    lead: str  # the input's shape without its last axis


def _quantize_rows(r: _Rewriter, p: str, x: str, k: int, channels: np.ndarray) -> _Rows:
    """Quantize `x` ([..., k]) per row over its ordinary channels, as described above."""
    # Rows: every token of x as one row of a 2-D matrix (a view: Reshape copies nothing).
    rows = r.op("Reshape", [x, r.const(f"{p}_q_2d", np.array([-1, k], np.int64))], f"{p}_q_rows")
    measured = rows
    if len(channels):
        keep = np.ones(k, np.float32)
        keep[channels] = 0.0
        measured = r.op("Mul", [rows, r.const(f"{p}_q_keep", keep)], f"{p}_q_ordinary")
    # Per-row range over the ordinary channels, always holding 0 (so zp is a valid uint8). The
    # per-row figures are vectors [rows], not [rows, 1]: onnxruntime 1.31 broadcasts a scalar
    # over a [rows, 1] tensor one element at a time (5.5 us a node at 512 rows, 0.6 us as a
    # vector: bench/op_costs.py), and a quantized layer has a dozen such nodes.
    high = r.op(
        "Max",
        [r.op("ReduceMax", [measured], f"{p}_q_max", axes=[1], keepdims=0), "q_zero_f"],
        f"{p}_q_hi",
    )
    low = r.op(
        "Min",
        [r.op("ReduceMin", [measured], f"{p}_q_min", axes=[1], keepdims=0), "q_zero_f"],
        f"{p}_q_lo",
    )
    spread = r.op("Max", [r.op("Sub", [high, low], f"{p}_q_spread0"), "q_tiny_f"], f"{p}_q_spread")
    scale = r.op("Div", [spread, "q_levels_f"], f"{p}_q_scale")
    zero = r.op(
        "Round", [r.op("Div", [r.op("Neg", [low], f"{p}_q_neg"), scale], f"{p}_q_z")], f"{p}_q_zr"
    )
    zero_u8 = r.op("Cast", [zero], f"{p}_q_zp", to=TensorProto.UINT8)
    quantized = r.op("QuantizeLinear", [measured, scale, zero_u8], f"{p}_q_x", axis=0)
    # As columns for the products: sc (A's scale), sc * zp (its minus sign lives in the Gemm's
    # matrix, _multiply) and ones (sc / sc with sc > 0) that add the bias.
    column = r.op("Unsqueeze", [scale, "q_column_axis"], f"{p}_q_scale_column")
    offset = r.op(
        "Unsqueeze", [r.op("Mul", [scale, zero], f"{p}_q_szp"), "q_column_axis"], f"{p}_q_offset"
    )
    ones = r.op("Div", [column, column], f"{p}_q_ones")
    parts = [offset, ones]
    if len(channels):
        parts.insert(
            0, r.op("Gather", [rows, r.const(f"{p}_q_channels", channels)], f"{p}_q_outl", axis=1)
        )
    factors = r.op("Concat", parts, f"{p}_q_factors", axis=1)
    lead = r.op(
        "Slice", [r.op("Shape", [x], f"{p}_q_shape"), "q_lead_start", "q_lead_end"], f"{p}_q_lead"
    )
    return _Rows(quantized, column, factors, lead)


def _multiply(
    r: _Rewriter,
    node: onnx.NodeProto,
    x: _Rows,
    weight: np.ndarray,
    channels: np.ndarray,
    bias: FoldedBias | None,
) -> None:
    """
    Replace `node` (x @ weight) by the int8 product of `x`, outlier `channels` in fp32, plus
    `bias` when folded (the output then takes the name of the Add that added it).
    """
    p = node.name
    m = weight.shape[1]
    bias_row = bias.values if bias is not None else np.zeros(m, np.float32)
    out = (
        bias.adder.output[0] if bias is not None and bias.adder.op_type == "Add" else node.output[0]
    )
    ordinary = weight.copy()
    ordinary[channels] = 0.0
    w_int, w_scale = int8_weights(ordinary)
    column_sums = (w_int.astype(np.int64).sum(axis=0) * w_scale).astype(np.float32)
    # The row scales go in as A's scale, [rows, 1]: the kernel multiplies its output by them
    # in place (onnxruntime 1.31 broadcasts a non-scalar scale over the output), one pass and
    # one buffer fewer than a Mul node, and the same bits.
    scaled = r.op(
        "MatMulIntegerToFloat",
        [
            x.quantized,
            r.const(f"{p}_q_w", w_int),
            x.scale,
            r.const(f"{p}_q_ws", w_scale),
            "q_zero_u8",
        ],
        f"{p}_q_product",
        domain=MS_DOMAIN,
    )
    # One small Gemm adds the outlier channels, the zero-point term and the bias in fp32:
    # [x[:, C] | sc * zp | 1] @ [W[C] ; -colsum ; bias] + scaled.
    extra = np.concatenate([weight[channels], -column_sums[None, :], bias_row[None, :]])
    extra = extra.astype(np.float32)
    exact = r.op("Gemm", [x.factors, r.const(f"{p}_q_extra", extra), scaled], f"{p}_q_out")
    shape = r.op(
        "Concat", [x.lead, r.const(f"{p}_q_m", np.array([m], np.int64))], f"{p}_q_oshape", axis=0
    )
    r.nodes.append(helper.make_node("Reshape", [exact, shape], [out], name=f"{p}_q_reshape"))
