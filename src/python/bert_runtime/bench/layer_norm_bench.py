"""ONNX Runtime's CPU SkipLayerNormalization against the Add + LayerNormalization it fuses.

The evidence for keeping the two apart on CPU (optimize.py, session.py): one residual norm of a
[32, 128, hidden] activation, as the fused com.microsoft op and as the ONNX ops it replaces, in
sessions built the way ours are, interleaved round by round. Prints CPU ms per call.

    python layer_norm_bench.pex --threads 1 --rounds 20
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from .timing import interleaved_cpu_ms

HIDDEN_SIZES = (384, 768)
BATCH, SEQUENCE = 32, 128


def _models(hidden: int) -> dict[str, bytes]:
    """The fused op and its unfused form, both `y = norm(x + skip + bias) * gamma + beta`."""
    rng = np.random.default_rng(hidden)
    weights = [
        numpy_helper.from_array(rng.standard_normal(hidden).astype(np.float32), name)
        for name in ("gamma", "beta", "bias")
    ]
    shape = [BATCH, SEQUENCE, hidden]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("x", "skip")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)]
    fused = [
        helper.make_node(
            "SkipLayerNormalization",
            ["x", "skip", "gamma", "beta", "bias"],
            ["y"],
            domain="com.microsoft",
            epsilon=1e-12,
        )
    ]
    apart = [
        helper.make_node("Add", ["x", "bias"], ["biased"]),
        helper.make_node("Add", ["biased", "skip"], ["summed"]),
        helper.make_node(
            "LayerNormalization", ["summed", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-12
        ),
    ]
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]

    def model(nodes: list[onnx.NodeProto]) -> bytes:
        graph = helper.make_graph(nodes, "residual_norm", inputs, outputs, weights)
        built: bytes = helper.make_model(
            graph, opset_imports=opsets, ir_version=9
        ).SerializeToString()
        return built

    return {"SkipLayerNormalization": model(fused), "Add + LayerNormalization": model(apart)}


def measure(hidden: int, threads: int, rounds: int) -> dict[str, float]:
    """Median CPU milliseconds per call of each form."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sessions = {
        # As session.py builds CPU sessions: ONNX Runtime must not fuse the second form back.
        name: ort.InferenceSession(
            model,
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=["SkipLayerNormFusion"],
        )
        for name, model in _models(hidden).items()
    }
    rng = np.random.default_rng(0)
    feeds = {
        name: rng.standard_normal((BATCH, SEQUENCE, hidden)).astype(np.float32)
        for name in ("x", "skip")
    }
    runs = {name: functools.partial(session.run, None, feeds) for name, session in sessions.items()}
    return interleaved_cpu_ms(runs, rounds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    print(
        f"\n## Residual layer norm, [{BATCH}, {SEQUENCE}, hidden], onnxruntime {ort.__version__}, "
        f"threads={args.threads}, CPU ms per call (median of {args.rounds})\n"
    )
    print("| hidden | SkipLayerNormalization | Add + LayerNormalization | fused / apart |")
    print("|---:|---:|---:|---:|")
    for hidden in HIDDEN_SIZES:
        fused, apart = measure(hidden, args.threads, args.rounds).values()
        print(f"| {hidden} | {fused:.2f} | {apart:.2f} | {fused / apart:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
