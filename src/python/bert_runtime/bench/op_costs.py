"""What single ONNX Runtime CPU operators cost in the forms the int8 graph could take.

The evidence behind builder 8's choices (quantize.py, bias_folding.py, unpadded_attention.py),
each pair measured in sessions built alike (one thread, no spinning), interleaved round by round:
- BiasGelu against Gelu on a sum that already holds the bias, at a feed-forward activation;
- a per-row figure as a [rows, 1] tensor against a [rows] vector, 24 nodes that each take the
  larger of it and 0 (the quantization's per-row arithmetic);
- MultiHeadAttention with its padding mask against flash_attention.py's rewrite, on batches with
  and without padding, per model size;
- the row scale as MatMulIntegerToFloat's A scale against a Mul after it.

    python op_costs.pex --rounds 30
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from bert_runtime.preparation.flash_attention import flash_attention
from bert_runtime.preparation.onnx_builder import ATTENTION_MASK

from .timing import interleaved_cpu_ms

ROWS = 512  # one int8 CPU slice: 4 texts of 128 tokens
MS = "com.microsoft"


@dataclass(frozen=True)
class Case:
    """Two or more forms of one computation, and the inputs they all take."""

    name: str
    forms: dict[str, onnx.ModelProto]
    feeds: dict[str, np.ndarray]


def _model(
    nodes: list[onnx.NodeProto],
    inputs: dict[str, tuple[Any, list[int]]],
    initializers: dict[str, np.ndarray],
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "case",
        [helper.make_tensor_value_info(n, t, shape) for n, (t, shape) in inputs.items()],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        [numpy_helper.from_array(value, name) for name, value in initializers.items()],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=9)


def _node(op: str, inputs: list[str], out: str, domain: str = "", **attrs: Any) -> onnx.NodeProto:
    return helper.make_node(op, inputs, [out], domain=domain, **attrs)


def gelu_case(width: int) -> Case:
    rng = np.random.default_rng(0)
    bias = {"b": rng.standard_normal(width).astype(np.float32)}
    x = {"x": (TensorProto.FLOAT, [ROWS, width])}
    return Case(
        f"Gelu at [{ROWS}, {width}]",
        {
            "BiasGelu(x, b)": _model([_node("BiasGelu", ["x", "b"], "y", MS)], x, bias),
            "Gelu(x), the bias already in x": _model([_node("Gelu", ["x"], "y", MS)], x, {}),
        },
        {"x": rng.standard_normal((ROWS, width)).astype(np.float32)},
    )


def per_row_case(nodes: int = 24) -> Case:
    def chain(shape: list[int]) -> onnx.ModelProto:
        steps = [
            _node("Max", ["x" if i == 0 else f"t{i - 1}", "zero"], f"t{i}") for i in range(nodes)
        ]
        return _model(steps, {"x": (TensorProto.FLOAT, shape)}, {"zero": np.array(0, np.float32)})

    return Case(
        f"{nodes} x Max(per-row figure, 0)",
        {f"[{ROWS}, 1]": chain([ROWS, 1]), f"[{ROWS}]": chain([ROWS])},
        {"x": np.ones(ROWS, np.float32)},
    )


def attention_case(heads: int, head_size: int, padded: bool) -> Case:
    """The masked node as builders before 8 left it, and flash_attention.py's rewrite of it."""
    hidden = heads * head_size
    shape = [ROWS // 128, 128, hidden]
    tensors: dict[str, tuple[Any, list[int]]] = {n: (TensorProto.FLOAT, shape) for n in "qkv"}
    tensors[ATTENTION_MASK] = (TensorProto.INT32, shape[:2])
    node = _node(
        "MultiHeadAttention", ["q", "k", "v", "bias", ATTENTION_MASK], "y", MS, num_heads=heads
    )
    masked = _model([node], tensors, {"bias": np.zeros(3 * hidden, np.float32)})
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal(shape).astype(np.float32) for n in "qkv"}
    lengths = np.array([128, 100, 60, 20] if padded else [128] * 4)
    feeds[ATTENTION_MASK] = (np.arange(128)[None, :] < lengths[:, None]).astype(np.int32)
    batch = "padded to 128 from 100, 60, 20" if padded else "no padding"
    return Case(
        f"MultiHeadAttention, 4 x 128 tokens ({batch}), {heads} heads of {head_size}",
        {"padding mask": masked, "flash_attention.py (flash kernel)": flash_attention(masked)},
        feeds,
    )


def row_scale_case(k: int = 384, m: int = 1536) -> Case:
    rng = np.random.default_rng(0)
    weights: dict[str, np.ndarray] = {
        "w": rng.integers(-127, 128, (k, m)).astype(np.int8),
        "ws": rng.random(m).astype(np.float32),
        "zp": np.array(0, np.uint8),
        "one": np.array(1.0, np.float32),
    }
    inputs = {"a": (TensorProto.UINT8, [ROWS, k]), "sc": (TensorProto.FLOAT, [ROWS, 1])}
    inside = _node("MatMulIntegerToFloat", ["a", "w", "sc", "ws", "zp"], "y", MS)
    apart = [
        _node("MatMulIntegerToFloat", ["a", "w", "one", "ws", "zp"], "p", MS),
        _node("Mul", ["p", "sc"], "y"),
    ]
    return Case(
        f"int8 product [{ROWS}, {k}] x [{k}, {m}] with per-row scales",
        {
            "Mul after the product": _model(apart, inputs, weights),
            "as the product's A scale": _model([inside], inputs, weights),
        },
        {
            "a": rng.integers(0, 256, (ROWS, k)).astype(np.uint8),
            "sc": rng.random((ROWS, 1)).astype(np.float32),
        },
    )


def measure(case: Case, threads: int, rounds: int) -> dict[str, float]:
    """Median CPU milliseconds per call of each form."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sessions = {
        name: ort.InferenceSession(
            m.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        for name, m in case.forms.items()
    }
    runs = {}
    for name, session in sessions.items():
        # Each form's own (static) input shape: one case feeds [rows] and [rows, 1] alike.
        feeds = {i.name: case.feeds[i.name].reshape(i.shape) for i in session.get_inputs()}
        runs[name] = functools.partial(session.run, None, feeds)
    return interleaved_cpu_ms(runs, rounds)


def cases() -> list[Case]:
    return [
        gelu_case(1536),
        gelu_case(3072),
        per_row_case(),
        attention_case(12, 32, padded=False),
        attention_case(12, 32, padded=True),
        attention_case(12, 64, padded=False),
        attention_case(12, 64, padded=True),
        row_scale_case(),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    print(
        f"\n## Operator forms, onnxruntime {ort.__version__}, threads={args.threads}, "
        f"CPU ms per call (median of {args.rounds})\n"
    )
    print("| case | form | ms | vs the first form |")
    print("|---|---|---:|---:|")
    for case in cases():
        results = measure(case, args.threads, args.rounds)
        first = next(iter(results.values()))
        for form, ms in results.items():
            print(f"| {case.name} | {form} | {ms:.3f} | {ms / first:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
