"""The speed of one bert-base feed-forward GEMM (4096 tokens x 768 -> 3072), per backend.

An encoder at seq 128 spends almost all its time in such multiplications, so this rate bounds what
any graph-level work can reach: it tells "our engine is slow" apart from "this CPU's kernels are
this fast" (e.g. int8 vs fp32 without VNNI). Same session options and int8 quantization as the
engine's prepared models.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bert_runtime.config import EngineConfig, Precision
from bert_runtime.preparation.optimize import to_int8_dynamic
from bert_runtime.serving.session import create_session

from .timing import timed_runs

TOKENS, HIDDEN, INTERMEDIATE = 4096, 768, 3072
FLOPS = 2 * TOKENS * HIDDEN * INTERMEDIATE
# ONNX Runtime 1.31 reads IR versions up to 13; newer onnx packages write 14 by default.
_IR_VERSION = 10


def _rate(run: Callable[[], object], repeats: int) -> float:
    """Median GFLOP/s over `repeats` runs after one warm-up."""
    return FLOPS / statistics.median(timed_runs(run, repeats)) / 1e9


def _matmul_model(weight: np.ndarray) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "weight"], ["y"])],
        "ffn_gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["tokens", HIDDEN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["tokens", INTERMEDIATE])],
        [numpy_helper.from_array(weight, "weight")],
    )
    opsets = [helper.make_opsetid("", 17)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=_IR_VERSION)


def ort_gflops(precision: Precision, threads: int, repeats: int = 7) -> float:
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((HIDDEN, INTERMEDIATE)) * 0.02).astype(np.float32)
    inputs = {"x": rng.standard_normal((TOKENS, HIDDEN)).astype(np.float32)}
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "fp32.onnx"
        onnx.save(_matmul_model(weight), path)
        if precision is Precision.INT8:
            to_int8_dynamic(path, Path(scratch) / "int8.onnx")
            path = Path(scratch) / "int8.onnx"
        session = create_session(path, EngineConfig(intra_op_threads=threads))
    return _rate(lambda: session.run(["y"], inputs), repeats)


def torch_gflops(threads: int, repeats: int = 7) -> float:
    import torch  # pants: no-infer-dep

    torch.set_num_threads(threads)
    layer = torch.nn.Linear(HIDDEN, INTERMEDIATE).eval()
    x = torch.randn(TOKENS, HIDDEN)

    def run() -> object:
        with torch.inference_mode():
            return layer(x)

    return _rate(run, repeats)


def torch_onednn_gflops(threads: int, repeats: int = 7) -> float:
    """
    PyTorch's oneDNN linear layer, which eager models do not use (nn.Linear on plain tensors calls
    MKL's sgemm): where the two differ (AMD CPUs with AVX-512), a ratio against eager PyTorch is
    read beside what PyTorch's faster GEMM would allow.
    """
    import torch  # pants: no-infer-dep
    from torch.utils import mkldnn  # pants: no-infer-dep

    torch.set_num_threads(threads)
    layer = mkldnn.to_mkldnn(torch.nn.Sequential(torch.nn.Linear(HIDDEN, INTERMEDIATE).eval()))
    x = torch.randn(TOKENS, HIDDEN).to_mkldnn()

    def run() -> object:
        with torch.inference_mode():
            return layer(x)

    return _rate(run, repeats)
