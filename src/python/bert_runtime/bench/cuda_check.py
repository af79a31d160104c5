"""The CUDA path's checks: fp16 against fp32 parity, IO binding against plain runs, and throughput.

Prepares the bert-base-sized random checkpoint (or with --model mpnet or modernbert, that
network's) for CUDA in fp32 and fp16. Where ONNX Runtime has a working CUDA provider it runs three
engines on the same token batches (fp32 with IO binding, fp16 with IO binding, fp16 with plain
runs) and prints, per engine, the embedding cosine against fp32 and the throughput per shape.
Without CUDA it can only run both graphs in bare CPU sessions, which shows what the fp16 weights
alone cost (ONNX Runtime computes in fp32 wherever it lacks fp16 CPU kernels), and the table says
so.

On a GPU host, with an interpreter that has onnxruntime-gpu and bert_runtime's requirements:
    PYTHONPATH=src/python python -m bert_runtime.bench.cuda_check --workdir /tmp/cuda-check
    (then again with --model modernbert: its RotaryEmbedding and windowed attention in fp16)
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bert_runtime.config import Device, EngineConfig, Precision
from bert_runtime.errors import ProviderUnavailableError
from bert_runtime.manifest import MODEL_NAME
from bert_runtime.preparation.prepare import prepare
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.session import CPU_PROVIDER, CUDA_PROVIDER

from .random_bert import MODEL_TYPES, VOCAB, write_random_model
from .timing import timed_runs
from .workload import cosine_min, embed_mean, full_length_inputs, random_sequences

SHAPES = ((128, 1), (128, 32), (32, 8))  # (sequence length, batch size)
PARITY_TARGET = 0.999


@dataclass
class Row:
    """One engine's answers: worst cosine against fp32 over all shapes, and seq/s per shape."""

    name: str
    cosine: float
    rates: dict[tuple[int, int], float] = field(default_factory=dict)


def _batches(seed: int) -> dict[tuple[int, int], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {(seq, batch): random_sequences(rng, [seq] * batch, VOCAB) for seq, batch in SHAPES}


def _cuda_rows(
    dirs: dict[Precision, Path],
    batches: dict[tuple[int, int], list[np.ndarray]],
    device_id: int,
    repeats: int,
) -> tuple[list[Row], str]:
    """Raises ProviderUnavailableError where the CUDA provider is present but cannot run."""
    configs = (
        ("fp32, IO binding", Precision.FP32, True),
        ("fp16, IO binding", Precision.FP16, True),
        ("fp16, plain run", Precision.FP16, False),
    )
    rows: list[Row] = []
    reference: dict[tuple[int, int], np.ndarray] = {}
    gpu = "?"
    for name, precision, io_binding in configs:
        config = EngineConfig(device=Device.CUDA, device_id=device_id, io_binding=io_binding)
        engine = Engine(dirs[precision], config)
        gpu = engine.device_info.name or gpu
        vectors = {shape: embed_mean(engine, batch) for shape, batch in batches.items()}
        reference = reference or vectors  # the first engine, fp32, is the reference
        row = Row(name, min(cosine_min(vectors[s], reference[s]) for s in batches))
        for shape, batch in batches.items():
            times = timed_runs(partial(embed_mean, engine, batch), repeats)
            row.rates[shape] = len(batch) / statistics.median(times)
        rows.append(row)
        del engine
        gc.collect()  # one engine's GPU memory at a time
    return rows, gpu


def _cpu_rows(
    dirs: dict[Precision, Path], batches: dict[tuple[int, int], list[np.ndarray]]
) -> list[Row]:
    """fp16 weights against fp32 in bare CPU sessions (the Engine refuses fp16 on CPU)."""
    sessions = {
        precision: ort.InferenceSession(str(path / MODEL_NAME), providers=[CPU_PROVIDER])
        for precision, path in dirs.items()
    }
    taken = {i.name for i in sessions[Precision.FP32].get_inputs()}  # ModernBERT: no token types
    worst = 1.0
    for batch in batches.values():
        feeds = {k: v for k, v in full_length_inputs(np.stack(batch)).items() if k in taken}
        full, half = (sessions[p].run(["mean_embedding"], feeds)[0] for p in dirs)
        worst = min(worst, cosine_min(half, full))
    return [Row("fp16 graph, bare CPU session", worst)]


def _print_table(rows: list[Row], where: str, *, on_gpu: bool) -> None:
    print(f"## CUDA path checks ({where})\n")
    shapes = [f"s{seq} b{batch} seq/s" for seq, batch in SHAPES]
    print("| engine | cosine vs fp32 (min) | " + " | ".join(shapes) + " |")
    print("|---|---:|" + "---:|" * len(shapes))
    for row in rows:
        rates = [f"{row.rates[s]:.1f}" if s in row.rates else "-" for s in SHAPES]
        print(f"| {row.name} | {row.cosine:.7f} | " + " | ".join(rates) + " |")
    worst = min(row.cosine for row in rows)
    if not on_gpu:
        print(
            f"\nThe fp16 parity target (cosine >= {PARITY_TARGET} on a GPU) needs a GPU to measure."
        )
        return
    verdict = "met" if worst >= PARITY_TARGET else "NOT met"
    print(f"\nfp16 parity target cosine >= {PARITY_TARGET}: {verdict} (worst {worst:.7f})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="where models are written")
    parser.add_argument("--device-id", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per shape")
    parser.add_argument(
        "--model", choices=MODEL_TYPES, default="bert", help="the network (random weights)"
    )
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bert-cuda-check-"))
    source = workdir / f"source-{args.model}"
    if not (source / "model.safetensors").exists():
        write_random_model(source, args.model)
    dirs = {p: workdir / f"cuda-{args.model}-{p.value}" for p in (Precision.FP32, Precision.FP16)}
    for precision, path in dirs.items():
        prepare(str(source), path, device=Device.CUDA, precision=precision)
    batches = _batches(seed=0)

    if CUDA_PROVIDER in ort.get_available_providers():
        try:
            rows, gpu = _cuda_rows(dirs, batches, args.device_id, args.repeats)
            _print_table(rows, f"CUDA on {gpu}", on_gpu=True)
            return 0
        except ProviderUnavailableError as error:
            print(f"The CUDA provider is installed but cannot run: {error}\n")
    rows = _cpu_rows(dirs, batches)
    _print_table(rows, "no CUDA: what the fp16 weights alone cost", on_gpu=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
