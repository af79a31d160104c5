"""The int8 schemes quantization_bench compares with the shipped one (quantize.py).

Each takes the optimized fp32 graph whose QKV projections are MatMuls of their own (fused_qkv=False)
and returns a quantized copy. They exist for the benchmark only: measured on real checkpoints, none
of them keeps both the accuracy and the speed of the shipped scheme (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.capi._pybind_state import quantize_matmul_4bits, quantize_matmul_8bits

from bert_runtime.preparation.onnx_builder import MS_DOMAIN
from bert_runtime.preparation.optimize import to_int8_dynamic
from bert_runtime.preparation.quantize import quantizable, quantize_per_row


def _layer_matmuls(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    initializers = {init.name: init for init in model.graph.initializer}
    return [node for node in model.graph.node if quantizable(node, initializers)]


def dynamic_per_tensor(model: onnx.ModelProto, keep_ffn_out: bool = False) -> onnx.ModelProto:
    """
    ONNX Runtime's quantize_dynamic (one activation scale per tensor, per-channel 7-bit weights),
    on the layers' MatMuls; `keep_ffn_out` leaves the FFN output MatMuls (GELU inputs) fp32.
    """
    layers = {node.name for node in _layer_matmuls(model)}
    excluded = [node.name for node in model.graph.node if node.op_type == "MatMul"]
    excluded = [n for n in excluded if n not in layers or (keep_ffn_out and "_ffn_out_" in n)]
    with tempfile.TemporaryDirectory() as scratch:
        source, target = Path(scratch) / "fp32.onnx", Path(scratch) / "int8.onnx"
        onnx.save(model, source)
        to_int8_dynamic(source, target, op_types=["MatMul"], exclude=excluded)
        return onnx.load(target)


def smoothed_per_row(
    model: onnx.ModelProto, peaks: Mapping[str, np.ndarray], alpha: float = 0.5
) -> onnx.ModelProto:
    """
    SmoothQuant's migration (Xiao et al., 2022): x / s and s * W, s = peak_x^a / peak_w^(1-a) per
    input channel (normalized to median 1), then per-row int8 without outlier channels. The
    division is a Mul of its own: a GELU or layer-norm output feeds these MatMuls.
    """
    smoothed = onnx.ModelProto()
    smoothed.CopyFrom(model)
    initializers = {init.name: init for init in smoothed.graph.initializer}
    nodes: list[onnx.NodeProto] = []
    for node in smoothed.graph.node:
        if node.name in peaks and quantizable(node, initializers):
            weight = numpy_helper.to_array(initializers[node.input[1]])
            w_peak = np.maximum(np.abs(weight).max(axis=1), 1e-5)
            s = np.maximum(peaks[node.name], 1e-5) ** alpha / w_peak ** (1 - alpha)
            s = (s / np.median(s)).astype(np.float32)
            initializers[node.input[1]].CopyFrom(
                numpy_helper.from_array(weight * s[:, None], node.input[1])
            )
            divisor = f"{node.name}_smooth"
            smoothed.graph.initializer.append(numpy_helper.from_array(1.0 / s, divisor))
            nodes.append(helper.make_node("Mul", [node.input[0], divisor], [f"{divisor}_x"]))
            node.input[0] = f"{divisor}_x"
        nodes.append(node)
    del smoothed.graph.node[:]
    smoothed.graph.node.extend(nodes)
    return quantize_per_row(smoothed)


def static_per_tensor(
    model: onnx.ModelProto,
    ranges: Mapping[str, tuple[float, float]],
    outliers: Mapping[str, np.ndarray],
) -> onnx.ModelProto:
    """
    Static calibration: one fixed scale and zero point per MatMul input, from the calibration
    texts' range of its ordinary channels (`ranges`: min, max); outlier channels in fp32 as in
    quantize.py, whose per-row range nodes become constants broadcast to the rows.
    """
    quantized = quantize_per_row(model, outliers)
    nodes = list(quantized.graph.node)
    for name, (low, high) in ranges.items():
        scale = max(high - min(low, 0.0), 1e-30) / 255.0
        zero = float(np.clip(round(-min(low, 0.0) / scale), 0, 255))
        for suffix, value in (("scale", scale), ("zr", zero)):
            (node,) = (n for n in nodes if n.output[0] == f"{name}_q_{suffix}")
            constant = numpy_helper.from_array(
                np.full((1, 1), value, np.float32), f"{node.output[0]}_c"
            )
            quantized.graph.initializer.append(constant)
            rows = f"{name}_q_{suffix}_rows"
            nodes.insert(
                nodes.index(node), helper.make_node("Shape", [f"{name}_q_rows"], [rows], end=1)
            )
            two_d = f"{rows}_2d"
            ones = numpy_helper.from_array(np.array([1], np.int64), f"{rows}_one")
            quantized.graph.initializer.append(ones)
            nodes.insert(
                nodes.index(node), helper.make_node("Concat", [rows, ones.name], [two_d], axis=0)
            )
            nodes[nodes.index(node)] = helper.make_node(
                "Expand", [constant.name, two_d], [node.output[0]]
            )
    del quantized.graph.node[:]
    quantized.graph.node.extend(_live(nodes, {o.name for o in quantized.graph.output}))
    return quantized


def _live(nodes: list[onnx.NodeProto], outputs: set[str]) -> list[onnx.NodeProto]:
    """`nodes` without those whose outputs nothing reads (the dynamic range computation)."""
    needed, kept = set(outputs), []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            needed.update(node.input)
            kept.append(node)
    return kept[::-1]


def nbits(model: onnx.ModelProto, bits: int = 8, block_size: int = 32) -> onnx.ModelProto:
    """
    MatMulNBits: `bits`-bit (4 or 8) symmetric weights per block of `block_size` inputs, and
    accuracy_level 4: ONNX Runtime quantizes each row's activations per block of the same size
    inside the product (int8 compute), the one CPU kernel that scales A below per tensor.
    """
    if bits not in (4, 8):
        raise ValueError(f"MatMulNBits takes 4 or 8 bits here, not {bits}")
    quantize = quantize_matmul_8bits if bits == 8 else quantize_matmul_4bits
    quantized = onnx.ModelProto()
    quantized.CopyFrom(model)
    initializers = {init.name: init for init in quantized.graph.initializer}
    for node in _layer_matmuls(quantized):
        weight = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float32)
        k, n = weight.shape
        blocks = -(-k // block_size)
        packed = np.zeros((n, blocks, block_size * bits // 8), np.uint8)
        scales = np.zeros((n, blocks), np.float32)
        zero_points = np.zeros((n, -(-blocks * bits // 8)), np.uint8)  # unused: symmetric
        quantize(packed, weight, scales, zero_points, block_size, n, k, True)
        prefix = node.input[1]
        quantized.graph.initializer.extend(
            [
                numpy_helper.from_array(packed, f"{prefix}_q{bits}"),
                numpy_helper.from_array(scales, f"{prefix}_q{bits}_scales"),
            ]
        )
        node.op_type, node.domain = "MatMulNBits", MS_DOMAIN
        node.input[1:] = [f"{prefix}_q{bits}", f"{prefix}_q{bits}_scales"]
        node.attribute.extend(
            [
                helper.make_attribute("K", k),
                helper.make_attribute("N", n),
                helper.make_attribute("bits", bits),
                helper.make_attribute("block_size", block_size),
                helper.make_attribute("accuracy_level", 4),
            ]
        )
    if not any(opset.domain == MS_DOMAIN for opset in quantized.opset_import):
        quantized.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    used = {name for node in quantized.graph.node for name in node.input}
    kept = [init for init in quantized.graph.initializer if init.name in used]
    del quantized.graph.initializer[:]
    quantized.graph.initializer.extend(kept)
    return quantized
