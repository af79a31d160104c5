"""Engine benchmark on CPU: throughput and latency of bert-base-sized models, with a same-run
baseline.

Prints tables (markdown) of:
1. sequences/s and median batch latency at seq 32/128 x batch 1/8/32 for ONNX Runtime fp32 and int8
   (our prepared models) and PyTorch eager (transformers) when torch is importable;
2. accuracy of the same run: fp32 vs PyTorch max-abs-diff, int8 vs fp32 embedding cosine;
3. a mixed-length workload (lengths 8-128, mean ~40): the Batcher's length grouping vs pad-to-max
   and vs pad-to-longest in arrival order;
4. peak RSS of a process serving the fp32 model.

Weights are random, at bert-base-uncased's real size, generated on the fly (never committed). Run
(see docs/BENCHMARKS.md): ./pants package src/python/bert_runtime/bench:engine_bench, then the pex,
with PEX_INHERIT_PATH=fallback and an interpreter that has torch + transformers for the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bert_runtime.config import BatcherConfig, EngineConfig, Pooling, Precision
from bert_runtime.preparation.prepare import prepare
from bert_runtime.serving.batcher import Batcher
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.tasks import Embedding, EmbedRequest

from .random_bert import write_random_bert

CLS, SEP = 2, 3
REQUEST = EmbedRequest(pooling=Pooling.MEAN, normalize=False)


def _sequences(rng: np.random.Generator, lengths: Sequence[int], vocab: int) -> list[np.ndarray]:
    out = []
    for length in lengths:
        ids = rng.integers(100, vocab, size=length, dtype=np.int32)
        ids[0], ids[-1] = CLS, SEP
        out.append(ids)
    return out


def _time(fn: Callable[[], Any], iterations: int, min_seconds: float) -> list[float]:
    fn()  # warm-up
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < iterations or time.perf_counter() - started < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= iterations * 5:
            break
    return times


def _ort_embed(engine: Engine, sequences: list[np.ndarray], multiple: int = 8) -> np.ndarray:
    results = engine.run(sequences, [REQUEST] * len(sequences), multiple)
    return np.stack([r.vector for r in results if isinstance(r, Embedding)])


class TorchBaseline:
    """transformers' BertModel in eager mode, mean pooling like ours."""

    def __init__(self, source: Path, threads: int) -> None:
        import torch  # pants: no-infer-dep
        from transformers import BertModel  # pants: no-infer-dep

        torch.set_num_threads(threads)
        self.torch = torch
        self.model = BertModel.from_pretrained(source, attn_implementation="eager").eval()
        self.version = torch.__version__

    def embed(self, sequences: list[np.ndarray]) -> np.ndarray:
        torch = self.torch
        width = max(len(s) for s in sequences)
        ids = np.zeros((len(sequences), width), np.int64)
        mask = np.zeros_like(ids)
        for row, s in enumerate(sequences):
            ids[row, : len(s)], mask[row, : len(s)] = s, 1
        with torch.inference_mode():
            hidden = self.model(
                input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
            ).last_hidden_state
            m = torch.from_numpy(mask).unsqueeze(-1).float()
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
        return np.asarray(pooled.numpy())


def _cosine_min(a: np.ndarray, b: np.ndarray) -> float:
    dots = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(dots.min())


def _rss_probe(model_dir: Path, threads: int) -> None:
    """Child process: load and serve the fp32 model at s128 b32, print peak RSS in MiB."""
    engine = Engine(model_dir, EngineConfig(max_sequence_length=128, intra_op_threads=threads))
    sequences = _sequences(np.random.default_rng(1), [128] * 32, 30522)
    for _ in range(3):
        _ort_embed(engine, sequences)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _peak_rss_mib(model_dir: Path, threads: int) -> float:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bert_runtime.bench.engine_bench",
            "--rss-probe",
            str(model_dir),
            "--threads",
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    return float(done.stdout.strip().splitlines()[-1])


def _mixed_workload(engine: Engine, count: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.rint(8 + rng.exponential(32, count)), 8, 128).astype(int)
    sequences = _sequences(rng, lengths.tolist(), engine.manifest.vocab_size)

    def in_arrival_order(multiple: int) -> float:
        started = time.perf_counter()
        for start in range(0, count, 32):
            _ort_embed(engine, sequences[start : start + 32], multiple)
        return count / (time.perf_counter() - started)

    async def batched() -> float:
        config = BatcherConfig(max_batch_size=32, max_batch_tokens=32 * 128, max_queue_delay_ms=5)
        async with Batcher(engine, config, max_positions=512) as batcher:
            started = time.perf_counter()
            await asyncio.gather(*(batcher.submit(s, REQUEST) for s in sequences))
            return count / (time.perf_counter() - started)

    return {
        "mean_length": float(lengths.mean()),
        "pad_to_max": in_arrival_order(multiple=128),
        "pad_to_longest": in_arrival_order(multiple=8),
        "batcher": asyncio.run(batched()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="where models are written")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--mixed-count", type=int, default=512)
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    parser.add_argument("--rss-probe", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_probe:
        _rss_probe(args.rss_probe, args.threads)
        return 0

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bert-bench-"))
    source = write_random_bert(workdir / "source")
    prepared = {}
    for precision in (Precision.FP32, Precision.INT8):
        t0 = time.perf_counter()
        prepared[precision] = prepare(str(source), workdir / precision.value, precision=precision)
        print(f"prepared {precision.value} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    config = EngineConfig(max_sequence_length=128, intra_op_threads=args.threads)
    engines = {p: Engine(workdir / p.value, config) for p in prepared}

    backends: dict[str, Callable[[list[np.ndarray]], np.ndarray]] = {
        "ort fp32": lambda s: _ort_embed(engines[Precision.FP32], s),
        "ort int8": lambda s: _ort_embed(engines[Precision.INT8], s),
    }
    torch_note = "not importable: no baseline"
    if not args.no_torch:
        try:
            baseline = TorchBaseline(source, args.threads)
            backends = {"torch eager fp32": baseline.embed, **backends}
            torch_note = f"torch {baseline.version}"
        except ImportError:
            pass

    print(f"\n## Engine throughput (threads={args.threads}, {torch_note})\n")
    print("| seq | batch | backend | seq/s (median) | batch latency p50 ms | vs torch |")
    print("|---:|---:|---|---:|---:|---:|")
    rng = np.random.default_rng(0)
    accuracy: dict[str, float] = {}
    for seq in (32, 128):
        for batch in (1, 8, 32):
            sequences = _sequences(rng, [seq] * batch, 30522)
            rates: dict[str, float] = {}
            for name, fn in backends.items():
                times = _time(partial(fn, sequences), args.iterations, args.min_seconds)
                median = statistics.median(times)
                rates[name] = batch / median
                base = rates.get("torch eager fp32")
                ratio = f"{rates[name] / base:.2f}x" if base else "-"
                row = [seq, batch, name, f"{rates[name]:.1f}", f"{median * 1000:.1f}", ratio]
                print("| " + " | ".join(map(str, row)) + " |")
            if seq == 128 and batch == 32:
                fp32 = backends["ort fp32"](sequences)
                accuracy["int8 vs fp32 cosine (min)"] = _cosine_min(
                    backends["ort int8"](sequences), fp32
                )
                if "torch eager fp32" in backends:
                    reference = backends["torch eager fp32"](sequences)
                    accuracy["fp32 vs torch max abs diff"] = float(np.abs(fp32 - reference).max())
                    accuracy["int8 vs torch cosine (min)"] = _cosine_min(
                        backends["ort int8"](sequences), reference
                    )

    print("\n## Accuracy at seq 128, batch 32 (mean-pooled embeddings)\n")
    print("| measure | value |\n|---|---:|")
    for name, value in accuracy.items():
        print(f"| {name} | {value:.6g} |")

    mixed = _mixed_workload(engines[Precision.FP32], args.mixed_count, seed=7)
    mean = mixed["mean_length"]
    print(f"\n## Mixed lengths (8-128, mean {mean:.1f}), {args.mixed_count} texts, fp32\n")
    print("| strategy | seq/s | vs pad-to-max |\n|---|---:|---:|")
    for name in ("pad_to_max", "pad_to_longest", "batcher"):
        label = {
            "pad_to_max": "arrival order, pad to 128",
            "pad_to_longest": "arrival order, pad to longest",
            "batcher": "Batcher (length grouping)",
        }[name]
        print(f"| {label} | {mixed[name]:.1f} | {mixed[name] / mixed['pad_to_max']:.2f}x |")

    rss = _peak_rss_mib(workdir / Precision.FP32.value, args.threads)
    print("\n## Memory\n\n| measure | MiB |\n|---|---:|")
    print(f"| peak RSS of a process serving fp32 (s128 b32) | {rss:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
