"""ONNX Runtime's thread count under a CPU limit: its own count against the budget (cpus.py).

Run it inside a CPU-limited cgroup (`docker run --cpus=1 ...`, `systemd-run --scope -p
CPUQuota=100% ...`, or a cgroup made by hand, docs/BENCHMARKS.md). One engine per thread count
runs the same batch back to back for `--seconds`, the counts taking turns for `--rounds`; the
table gives batches per second and the latency percentiles of each, and the kernel's throttling
counters of the cgroup meanwhile. The baseline is the host's physical cores, what ONNX Runtime
picks by itself, blind to the limit.

    ./pants package src/python/bert_runtime/bench:cpu_limit_bench
    python3.11 dist/src.python.bert_runtime.bench/cpu_limit_bench.pex --model <prepared dir>
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from bert_runtime.bench.workload import REQUEST, random_sequences
from bert_runtime.config import EngineConfig
from bert_runtime.cpus import cpu_budget, cpu_cgroups
from bert_runtime.serving.engine import Engine


def _throttled_s() -> float | None:
    """Seconds this cgroup has been throttled so far (cpu.stat, v2 or v1); None if unreadable."""
    try:
        for directory, _, version in cpu_cgroups(Path("/proc/self"), Path("/")):
            stat = directory / "cpu.stat"
            if stat.is_file():
                pairs = dict(row.split() for row in stat.read_text().splitlines())
                key, unit = ("throttled_usec", 1e-6) if version == 2 else ("throttled_time", 1e-9)
                return int(pairs[key]) * unit
    except (OSError, ValueError, KeyError):
        pass
    return None


def main(argv: list[str] | None = None) -> int:
    """Print the table (see the module's doc)."""
    budget = cpu_budget()
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a prepared model directory")
    baseline = budget.physical_cores  # ONNX Runtime's own count, blind to the limit
    parser.add_argument(
        "--threads", type=int, nargs="+", default=sorted({baseline, budget.usable}, reverse=True)
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    engines = {
        n: Engine(args.model, EngineConfig(intra_op_threads=n, max_sequence_length=args.seq))
        for n in args.threads
    }
    vocab = next(iter(engines.values())).manifest.vocab_size
    batch = random_sequences(np.random.default_rng(0), [args.seq] * args.batch, vocab)
    latencies: dict[int, list[float]] = {n: [] for n in engines}
    throttled: dict[int, float | None] = dict.fromkeys(engines, 0.0)
    for round_index in range(args.rounds):
        order = list(engines) if round_index % 2 else list(engines)[::-1]
        for n in order:
            engines[n].run(batch, [REQUEST] * len(batch))
            before = _throttled_s()
            end = time.perf_counter() + args.seconds
            while (started := time.perf_counter()) < end:
                engines[n].run(batch, [REQUEST] * len(batch))
                latencies[n].append(time.perf_counter() - started)
            after, so_far = _throttled_s(), throttled[n]
            if before is None or after is None or so_far is None:
                throttled[n] = None
            else:
                throttled[n] = so_far + after - before
    print(f"CPUs: {budget.describe()}; batch {args.batch} x {args.seq} tokens")
    print(f"{args.rounds} rounds of {args.seconds:g} s each, interleaved\n")
    print("| intra-op threads | batches/s | p50 ms | p99 ms | max ms | throttled (kernel) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n, seconds in latencies.items():
        ms = 1000 * np.array(seconds)
        rate = len(ms) / (args.rounds * args.seconds)
        p50, p99 = np.percentile(ms, [50, 99])
        spent = throttled[n]
        shown = "-" if spent is None else f"{spent:.1f} s"
        print(f"| {n} | {rate:.1f} | {p50:.1f} | {p99:.1f} | {ms.max():.1f} | {shown} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
