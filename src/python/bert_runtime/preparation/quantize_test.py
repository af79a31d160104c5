"""
The per-row int8 rewrite (quantize.py) on one MatMul, run by ONNX Runtime: each row's answer is its
own, outlier channels are exact, and the rest is as close as 8 bits allow.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from bert_runtime.preparation.quantize import int8_weights, quantizable, quantize_per_row

K, M = 64, 48
NODE = "l0_ffn_out_matmul"


def _model(weight: np.ndarray, name: str = NODE) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name=name)],
        "one_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", M])],
        [numpy_helper.from_array(weight, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(["y"], {"x": x})
    return np.asarray(y)


def _relative_error(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(found - exact) / np.linalg.norm(exact))


@pytest.fixture
def weight() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((K, M)).astype(np.float32) * 0.05


def _activations(rows: int, outlier: int | None = None, seed: int = 1) -> np.ndarray:
    """[1, rows, K] GELU-like activations; `outlier` channel reaching 100 in every row."""
    x = np.random.default_rng(seed).standard_normal((1, rows, K)).astype(np.float32)
    x = np.maximum(x, -0.17)
    if outlier is not None:
        x[..., outlier] = np.linspace(40, 100, rows, dtype=np.float32)
    return x


def test_the_rewrite_replaces_the_matmul_and_keeps_its_interface(weight: np.ndarray) -> None:
    quantized = quantize_per_row(_model(weight))
    ops = [node.op_type for node in quantized.graph.node]
    assert "MatMul" not in ops and ops.count("MatMulIntegerToFloat") == 1
    assert [o.name for o in quantized.graph.output] == ["y"]
    x = _activations(5)
    assert _run(quantized, x).shape == (1, 5, M)


def test_each_row_s_answer_does_not_depend_on_the_other_rows(weight: np.ndarray) -> None:
    quantized = quantize_per_row(_model(weight))
    x = _activations(4)
    alone = _run(quantized, x[:, :1])
    beside_huge = x.copy()
    beside_huge[:, 1:] *= 1000.0  # batch-mates with a thousand times the range
    np.testing.assert_array_equal(_run(quantized, beside_huge)[:, :1], alone)


def test_ordinary_rows_are_as_close_as_eight_bits_allow(weight: np.ndarray) -> None:
    x = _activations(32)
    error = _relative_error(_run(quantize_per_row(_model(weight)), x), x @ weight)
    assert error < 0.01, error


def test_outlier_channels_are_multiplied_in_fp32(weight: np.ndarray) -> None:
    """
    One channel reaching 100 leaves the rest of its row a few steps of one 8-bit scale; kept
    out (calibration's choice), it is exact and the others keep their resolution.
    """
    x = _activations(32, outlier=7)
    exact = x @ weight
    plain = _relative_error(_run(quantize_per_row(_model(weight)), x), exact)
    split = quantize_per_row(_model(weight), {NODE: np.array([7])})
    kept = _relative_error(_run(split, x), exact)
    assert kept < 0.01 < plain, (kept, plain)
    assert "Gemm" in [node.op_type for node in split.graph.node]


def test_a_row_of_zeros_gives_zeros_not_nan(weight: np.ndarray) -> None:
    x = np.zeros((1, 3, K), np.float32)
    np.testing.assert_array_equal(_run(quantize_per_row(_model(weight)), x), 0.0)


def test_only_encoder_layer_matmuls_by_a_constant_are_rewritten(weight: np.ndarray) -> None:
    """Heads (pooler, classifier, fill-mask) run on a few rows and stay fp32."""
    initializers = {"w": numpy_helper.from_array(weight, "w")}
    for name, expected in [(NODE, True), ("l11_qkv_matmul_node3", True), ("pooler_matmul", False)]:
        node = helper.make_node("MatMul", ["x", "w"], ["y"], name=name)
        assert quantizable(node, initializers) is expected, name
    by_activation = helper.make_node("MatMul", ["x", "other"], ["y"], name=NODE)
    assert not quantizable(by_activation, initializers)
    head = quantize_per_row(_model(weight, name="pooler_matmul"))
    assert [node.op_type for node in head.graph.node] == ["MatMul"]


def test_no_two_neighbouring_weights_can_saturate_a_16_bit_pair_sum() -> None:
    """
    vpmaddubsw (x86 without VNNI) adds the u8 x s8 products of inputs 2i and 2i + 1 in 16 bits:
    with activations up to 255, two neighbours must stay within 128 steps together.
    """
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((K + 1, M)).astype(np.float32)  # an odd K too
    weight[10, :] = weight[11, :] = 5.0  # neighbours both at the column's largest value
    w_int, scale = int8_weights(weight)
    assert w_int.dtype == np.int8 and scale.shape == (M,)
    padded = np.vstack([np.abs(w_int.astype(np.int32)), np.zeros((1, M), np.int32)])
    assert padded.reshape(-1, 2, M).sum(axis=1).max() * 255 <= 32767
    # The scale loses little: the reconstruction stays within half a step of every weight.
    assert (np.abs(w_int * scale - weight) <= scale / 2 + 1e-6).all()
    assert (np.abs(w_int).max(axis=0) >= 63).all()  # at least 7 of the 8 bits still used


def _with_bias_reader(weight: np.ndarray, reader: str, bias: np.ndarray) -> onnx.ModelProto:
    """MatMul, then `reader` (Add or com.microsoft BiasGelu) adding a constant bias."""
    model = _model(weight)
    model.graph.node[0].output[0] = "product"
    node = helper.make_node(reader, ["product", "b"], ["y"], name="l0_ffn_out_bias")
    node.domain = "com.microsoft" if reader == "BiasGelu" else ""
    model.graph.node.append(node)
    model.graph.initializer.append(numpy_helper.from_array(bias, "b"))
    if reader == "BiasGelu":
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


def _gelu(x: np.ndarray) -> np.ndarray:
    """transformers' "gelu" (erf), as com.microsoft Gelu computes it."""
    return np.asarray(0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))), np.float32)


@pytest.mark.parametrize("reader", ["Add", "BiasGelu"])
def test_the_bias_is_added_by_the_fp32_gemm(weight: np.ndarray, reader: str) -> None:
    """The Add goes and a BiasGelu becomes a Gelu; the answer is the same as with them."""
    bias = np.random.default_rng(5).standard_normal(M).astype(np.float32)
    x = _activations(32, outlier=7)
    quantized = quantize_per_row(_with_bias_reader(weight, reader, bias), {NODE: np.array([7])})
    ops = [node.op_type for node in quantized.graph.node]
    assert "Add" not in ops and "BiasGelu" not in ops
    assert ops.count("Gelu") == (reader == "BiasGelu")
    exact = x @ weight + bias
    if reader == "BiasGelu":
        exact = _gelu(exact)
    assert _relative_error(_run(quantized, x), exact) < 0.01


def test_a_bias_is_not_folded_when_the_product_is_read_twice(weight: np.ndarray) -> None:
    model = _with_bias_reader(weight, "Add", np.ones(M, np.float32))
    model.graph.output.append(helper.make_tensor_value_info("product", TensorProto.FLOAT, None))
    quantized = quantize_per_row(model)
    assert [node.op_type for node in quantized.graph.node].count("Add") == 1
    x = _activations(8)
    session = ort.InferenceSession(
        quantized.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    product, y = session.run(["product", "y"], {"x": x})
    np.testing.assert_allclose(y, np.asarray(product) + 1.0, rtol=1e-6)
