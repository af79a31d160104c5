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
import json
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


SHAPES = [(seq, batch) for seq in (32, 128) for batch in (1, 8, 32)]
BACKENDS = ("torch eager fp32", "ort fp32", "ort int8")


def _worker(backend: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Measure one backend in its own process, so thread pools of backends never compete."""
    if backend == "torch eager fp32":
        baseline = TorchBaseline(workdir / "source", args.threads)
        embed: Callable[[list[np.ndarray]], np.ndarray] = baseline.embed
        engine = None
    else:
        precision = Precision.FP32 if backend == "ort fp32" else Precision.INT8
        config = EngineConfig(max_sequence_length=128, intra_op_threads=args.threads)
        engine = Engine(workdir / precision.value, config)
        embed = partial(_ort_embed, engine)
    rng = np.random.default_rng(0)
    report: dict[str, Any] = {"shapes": {}}
    for seq, batch in SHAPES:
        sequences = _sequences(rng, [seq] * batch, 30522)
        times = _time(partial(embed, sequences), args.iterations, args.min_seconds)
        report["shapes"][f"{seq}x{batch}"] = {
            "rate": batch / statistics.median(times),
            "p50_ms": statistics.median(times) * 1000,
        }
        if (seq, batch) == (128, 32):
            np.save(workdir / f"embeddings-{backend.replace(' ', '-')}.npy", embed(sequences))
    report["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if backend == "ort fp32" and engine is not None:
        report["mixed"] = _mixed_workload(engine, args.mixed_count, seed=7)
    return report


def _run_worker(backend: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    command = [sys.executable, "-m", "bert_runtime.bench.engine_bench", "--worker", backend]
    command += ["--workdir", str(workdir), "--threads", str(args.threads)]
    command += ["--iterations", str(args.iterations), "--min-seconds", str(args.min_seconds)]
    command += ["--mixed-count", str(args.mixed_count)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        if backend == "torch eager fp32" and "ModuleNotFoundError" in done.stderr:
            return None
        raise RuntimeError(f"{backend} worker failed:\n{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="where models are written")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--mixed-count", type=int, default=512)
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bert-bench-"))
    if args.worker:
        print(json.dumps(_worker(args.worker, workdir, args)))
        return 0

    source = write_random_bert(workdir / "source")
    for precision in (Precision.FP32, Precision.INT8):
        t0 = time.perf_counter()
        prepare(str(source), workdir / precision.value, precision=precision)
        print(f"prepared {precision.value} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    reports: dict[str, dict[str, Any]] = {}
    for backend in BACKENDS:
        if backend.startswith("torch") and args.no_torch:
            continue
        report = _run_worker(backend, workdir, args)
        if report is not None:
            reports[backend] = report
    _print_tables(reports, workdir, args)
    return 0


def _print_tables(
    reports: dict[str, dict[str, Any]], workdir: Path, args: argparse.Namespace
) -> None:
    baseline = reports.get("torch eager fp32")
    note = (
        "same-run baseline: torch eager fp32" if baseline else "torch not importable: no baseline"
    )
    print(f"\n## Engine throughput, bert-base size (threads={args.threads}; {note})\n")
    print("| seq | batch | backend | seq/s (median) | batch latency p50 ms | vs torch |")
    print("|---:|---:|---|---:|---:|---:|")
    for seq, batch in SHAPES:
        key = f"{seq}x{batch}"
        for backend, report in reports.items():
            shape = report["shapes"][key]
            ratio = f"{shape['rate'] / baseline['shapes'][key]['rate']:.2f}x" if baseline else "-"
            row = [seq, batch, backend, f"{shape['rate']:.1f}", f"{shape['p50_ms']:.1f}", ratio]
            print("| " + " | ".join(map(str, row)) + " |")

    vectors = {
        backend: np.load(workdir / f"embeddings-{backend.replace(' ', '-')}.npy")
        for backend in reports
    }
    print("\n## Accuracy at seq 128, batch 32 (mean-pooled embeddings)\n")
    print("| measure | value |\n|---|---:|")
    int8_cosine = _cosine_min(vectors["ort int8"], vectors["ort fp32"])
    print(f"| int8 vs fp32 cosine (min) | {int8_cosine:.5f} |")
    if baseline:
        reference = vectors["torch eager fp32"]
        print(
            f"| fp32 vs torch max abs diff | {np.abs(vectors['ort fp32'] - reference).max():.2e} |"
        )
        print(f"| int8 vs torch cosine (min) | {_cosine_min(vectors['ort int8'], reference):.5f} |")

    mixed = reports["ort fp32"]["mixed"]
    mean = mixed["mean_length"]
    print(f"\n## Mixed lengths (8-128, mean {mean:.1f}), {args.mixed_count} texts, ort fp32\n")
    print("| strategy | seq/s | vs pad-to-max |\n|---|---:|---:|")
    labels = {
        "pad_to_max": "arrival order, pad to 128",
        "pad_to_longest": "arrival order, pad to longest",
        "batcher": "Batcher (length grouping)",
    }
    for name, label in labels.items():
        print(f"| {label} | {mixed[name]:.1f} | {mixed[name] / mixed['pad_to_max']:.2f}x |")

    print("\n## Memory (peak RSS of each measuring process, all shapes up to s128 b32)\n")
    print("| backend | MiB |\n|---|---:|")
    for backend, report in reports.items():
        print(f"| {backend} | {report['peak_rss_mib']:.0f} |")


if __name__ == "__main__":
    sys.exit(main())
