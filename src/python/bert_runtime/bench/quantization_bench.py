"""Which dynamic int8 layout is fastest on this CPU, and what it costs in accuracy.

Quantizes one prepared fp32 model (e.g. the engine benchmark's bert-base-sized one) several ways
with ONNX Runtime's `quantize_dynamic` and prints seq/s and embedding cosine against fp32 at seq
128, batch 8. The prepared int8 models use per-channel 7-bit weights (see bert_runtime/README.md for
why).

    python quantization_bench.pex --model /tmp/bench-work/fp32
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from bert_runtime.config import EngineConfig
from bert_runtime.manifest import MODEL_NAME
from bert_runtime.preparation.optimize import quiet_preprocessing_advice, unshare_gemm_weights
from bert_runtime.serving.session import create_session

from .timing import timed_runs
from .workload import cosine_min, full_length_inputs

VARIANTS: dict[str, dict[str, Any]] = {
    "per-channel, 7-bit (shipped)": {"per_channel": True, "reduce_range": True},
    "per-channel, 7-bit, MatMul only": {
        "per_channel": True,
        "reduce_range": True,
        "op_types_to_quantize": ["MatMul"],
    },
    "per-channel, 8-bit": {"per_channel": True, "reduce_range": False},
    "per-tensor, 8-bit": {"per_channel": False, "reduce_range": False},
    "per-tensor, 7-bit": {"per_channel": False, "reduce_range": True},
}


def _measure(path: Path, feeds: dict[str, np.ndarray], threads: int) -> tuple[float, np.ndarray]:
    session = create_session(path, EngineConfig(intra_op_threads=threads))
    times = timed_runs(lambda: session.run(["mean_embedding"], feeds), repeats=5)
    out: np.ndarray = session.run(["mean_embedding"], feeds)[0]
    return len(feeds["input_ids"]) / statistics.median(times), out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a prepared fp32 model directory")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    ids = rng.integers(100, 30000, (8, 128), dtype=np.int32)
    ids[:, 0], ids[:, -1] = 2, 3
    feeds = full_length_inputs(ids)
    source = args.model / MODEL_NAME
    base_rate, reference = _measure(source, feeds, args.threads)
    print(f"\n## Dynamic int8 variants (seq 128, batch 8, threads={args.threads})\n")
    print("| variant | seq/s | vs fp32 | cosine vs fp32 (min) |\n|---|---:|---:|---:|")
    print(f"| fp32 | {base_rate:.2f} | 1.00x | 1 |")
    with tempfile.TemporaryDirectory() as scratch:
        unshared = Path(scratch) / "fp32.onnx"
        model = onnx.load(source)
        unshare_gemm_weights(model)
        onnx.save(model, unshared)
        for name, options in VARIANTS.items():
            target = Path(scratch) / "int8.onnx"
            with quiet_preprocessing_advice():
                quantize_dynamic(
                    unshared,
                    target,
                    weight_type=QuantType.QInt8,
                    op_types_to_quantize=options.pop(
                        "op_types_to_quantize", ["MatMul", "Attention"]
                    ),
                    extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
                    **options,
                )
            rate, out = _measure(target, feeds, args.threads)
            cosine = cosine_min(out, reference)
            print(f"| {name} | {rate:.2f} | {rate / base_rate:.2f}x | {cosine:.5f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
