"""Which int8 scheme keeps a real checkpoint's accuracy, and what each costs in speed.

    ./pants package src/python/bert_runtime/bench:quantization_bench
    python3.11 dist/src.python.bert_runtime.bench/quantization_bench.pex \\
        --source /path/to/all-mpnet-base-v2 --workdir /tmp/qb-mpnet

Prepares the checkpoint's fp32 graph with our pipeline, quantizes it each way (int8_variants.py,
and quantize.py as prepare ships it) and prints against fp32, in the same run: the pooled
embeddings' min and mean cosine over prepare's own check texts (accuracy_check.py), the min cosine
between a text alone and in one batch of them all, and seq/s at seq 128 (batch 8: one CPU slice),
rounds interleaved. The CPU's model and int8/bf16 features head the table: the ratios depend on
them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import onnx

from bert_runtime.config import EngineConfig, Precision
from bert_runtime.manifest import MODEL_NAME, TOKENIZER_NAME, read_manifest
from bert_runtime.preparation import sources
from bert_runtime.preparation.accuracy_check import Int8Accuracy, check_texts, measure
from bert_runtime.preparation.calibration import (
    CALIBRATION_TEXTS,
    channel_ranges,
    outlier_channels,
)
from bert_runtime.preparation.graph import build_graph
from bert_runtime.preparation.int8 import special_tokens
from bert_runtime.preparation.model_config import read_config
from bert_runtime.preparation.optimize import optimize, to_int8_dynamic, unshare_gemm_weights
from bert_runtime.preparation.prepare import prepare
from bert_runtime.preparation.probe import Probe, save_model
from bert_runtime.preparation.quantize import quantize_per_row
from bert_runtime.preparation.st_settings import read_st_settings
from bert_runtime.preparation.weights import Weights
from bert_runtime.serving.session import create_session

from . import int8_variants
from .timing import CLOCKS, timed_runs
from .workload import full_length_inputs

_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_description() -> str:
    """The CPU's model name and the features the int8 and bf16 kernels depend on."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    model = fields.get("model name\t", "unknown CPU").strip()
    flags = set(fields.get("flags\t\t", "").split())
    return f"{model}, {os.cpu_count()} CPUs, flags: {' '.join(f for f in _FLAGS if f in flags)}"


def _unfused_fp32(source: str) -> onnx.ModelProto:
    """The optimized fp32 graph with QKV as MatMuls of their own, as prepare builds it for int8."""
    files = sources.fetch(source, None)
    config = read_config(files.path(sources.CONFIG_FILE))
    weights = Weights.load(files.path(sources.WEIGHTS_FILE))
    dense = read_st_settings(files).dense
    graph = build_graph(config, weights, weights.heads(config), dense, fused_qkv=False)
    return optimize(graph, config, for_gpu=False)


def _schemes(
    fused: Path, model: onnx.ModelProto, calibration: Probe, scratch: Path
) -> dict[str, Callable[[], onnx.ModelProto]]:
    ranges = channel_ranges(model, calibration, scratch)
    outliers = outlier_channels(ranges)
    peaks = {n: np.maximum(np.abs(lo), np.abs(hi)) for n, (lo, hi) in ranges.items()}
    ordinary = {}
    for name, (low, high) in ranges.items():
        keep = np.ones(len(low), bool)
        keep[outliers[name]] = False
        ordinary[name] = (float(low[keep].min()), float(high[keep].max()))

    def before() -> onnx.ModelProto:
        previous = onnx.load(fused)
        unshare_gemm_weights(previous)
        onnx.save(previous, scratch / "fused.onnx")
        to_int8_dynamic(scratch / "fused.onnx", scratch / "before.onnx")
        return onnx.load(scratch / "before.onnx")

    return {
        "per-tensor dynamic (ORT quantize_dynamic, shipped before)": before,
        "per-tensor dynamic, FFN output MatMuls fp32": lambda: int8_variants.dynamic_per_tensor(
            model, keep_ffn_out=True
        ),
        "static per-tensor (calibrated) + outlier channels fp32": lambda: (
            int8_variants.static_per_tensor(model, ordinary, outliers)
        ),
        "per-row (token) dynamic": lambda: quantize_per_row(model),
        "per-row dynamic after SmoothQuant (alpha 0.5)": lambda: int8_variants.smoothed_per_row(
            model, peaks
        ),
        "MatMulNBits 8-bit, block 32, int8 compute": lambda: int8_variants.nbits(model),
        "MatMulNBits 8-bit, block 128, int8 compute": lambda: int8_variants.nbits(
            model, block_size=128
        ),
        "MatMulNBits 4-bit, block 32, int8 compute": lambda: int8_variants.nbits(model, bits=4),
        "per-row dynamic + outlier channels fp32 (shipped)": lambda: quantize_per_row(
            model, outliers
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--source", required=True, help="a local checkpoint directory")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--schemes",
        nargs="*",
        default=None,
        help="measure only the schemes whose names contain one of these (fp32 always runs)",
    )
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="wall", help="see engine_bench's --clock"
    )
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="quantization-bench-"))
    prepared = workdir / "fp32"
    prepare(args.source, prepared, precision=Precision.FP32)
    manifest = read_manifest(prepared)
    tokenizer = prepared / TOKENIZER_NAME
    config = read_config(prepared / sources.CONFIG_FILE)
    pad = config.padding_idx or 0
    model = _unfused_fp32(args.source)
    scratch = workdir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    calibration = Probe.of(CALIBRATION_TEXTS, tokenizer, manifest.max_sequence_length, pad)
    texts = check_texts(special_tokens(tokenizer))
    check = Probe.of(texts, tokenizer, manifest.max_sequence_length, pad)

    paths = {"fp32": scratch / "fp32.onnx"}
    save_model(model, paths["fp32"])
    accuracy: dict[str, Int8Accuracy] = {}
    schemes = _schemes(prepared / MODEL_NAME, model, calibration, scratch)
    for name, make in schemes.items():
        if args.schemes is not None and not any(part in name for part in args.schemes):
            continue
        quantized = make()
        accuracy[name] = measure(model, quantized, check, scratch)
        paths[name] = scratch / f"variant{len(paths)}.onnx"
        save_model(quantized, paths[name])
        print(f"measured {name}", file=sys.stderr)

    rates = _interleaved_rates(paths, args)
    print(
        f"\n## int8 schemes on {args.source} (seq 128, batch {args.batch}, "
        f"threads={args.threads}, {args.clock} clock, {args.rounds} interleaved rounds x 3)"
    )
    print(f"\nHost: {cpu_description()}. Accuracy: {len(texts)} built-in check texts.\n")
    print("| scheme | cosine to fp32 (min) | (mean) | alone vs batched (min) | seq/s | vs fp32 |")
    print("|---|---:|---:|---:|---:|---:|")
    base = rates["fp32"]
    print(f"| fp32 | 1 | 1 | - | {base:.2f} | 1.00x |")
    for name, measured in accuracy.items():
        print(
            f"| {name} | {measured.min_cosine:.5f} | {measured.mean_cosine:.5f} | "
            f"{measured.batch_min_cosine:.5f} | {rates[name]:.2f} | {rates[name] / base:.2f}x |"
        )
    return 0


def _interleaved_rates(paths: dict[str, Path], args: argparse.Namespace) -> dict[str, float]:
    """Median seq/s of each model at seq 128, all sessions up, rounds interleaved."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 20000, (args.batch, 128), dtype=np.int32)
    ids[:, 0], ids[:, -1] = 0, 2
    feeds = full_length_inputs(ids)
    sessions = {
        name: create_session(path, EngineConfig(intra_op_threads=args.threads))
        for name, path in paths.items()
    }
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(args.rounds):
        for name, session in sessions.items():
            taken = {i.name for i in session.get_inputs()}
            own = {k: v for k, v in feeds.items() if k in taken}
            run = partial(session.run, ["mean_embedding"], own)
            times[name] += timed_runs(run, repeats=3, clock=args.clock)
    return {name: args.batch / statistics.median(t) for name, t in times.items()}


if __name__ == "__main__":
    sys.exit(main())
