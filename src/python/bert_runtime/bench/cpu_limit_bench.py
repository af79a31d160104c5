"""ONNX Runtime's thread count under a CPU limit: the host's count against the budget (cpus.py).

Run it inside a CPU-limited cgroup (`docker run --cpus=1 ...`, `systemd-run --scope -p
CPUQuota=100% ...`, or a cgroup made by hand, docs/BENCHMARKS.md). One engine per thread count
runs the same batch back to back for `--seconds`, the counts taking turns for `--rounds`; the
table gives batches per second and the latency percentiles of each, and the kernel's throttling
counters of the cgroup meanwhile. The baseline is the host's count, what ONNX Runtime would pick
where it cannot see the limit.

    ./pants package src/python/bert_runtime/bench:cpu_limit_bench
    python3.11 dist/src.python.bert_runtime.bench/cpu_limit_bench.pex --model <prepared dir>
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from bert_runtime.bench.workload import REQUEST, random_sequences
from bert_runtime.config import EngineConfig
from bert_runtime.cpus import cpu_budget
from bert_runtime.serving.engine import Engine


def _throttling() -> dict[str, int]:
    """This cgroup's CFS counters (v2 cpu.stat, or v1's under the cpu controller), if readable."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and not controllers:
            stat = Path("/sys/fs/cgroup") / path.strip("/") / "cpu.stat"
        elif "cpu" in controllers.split(","):
            stat = Path("/sys/fs/cgroup/cpu") / path.strip("/") / "cpu.stat"
        else:
            continue
        if stat.is_file():
            pairs = (row.split() for row in stat.read_text().splitlines())
            return {key: int(value) for key, value in pairs}
    return {}


def main(argv: list[str] | None = None) -> int:
    budget = cpu_budget()
    host = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a prepared model directory")
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({host, budget.usable}))
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
    throttled: dict[int, float] = dict.fromkeys(engines, 0.0)
    for round_index in range(args.rounds):
        order = list(engines) if round_index % 2 else list(engines)[::-1]
        for n in order:
            engines[n].run(batch, [REQUEST] * len(batch))
            before = _throttling().get("throttled_usec", _throttling().get("throttled_time", 0))
            end = time.perf_counter() + args.seconds
            while (started := time.perf_counter()) < end:
                engines[n].run(batch, [REQUEST] * len(batch))
                latencies[n].append(time.perf_counter() - started)
            after = _throttling().get("throttled_usec", _throttling().get("throttled_time", 0))
            throttled[n] += after - before
    print(f"CPUs: {budget.describe()}; host: {host}; batch {args.batch} x {args.seq} tokens")
    print(f"{args.rounds} rounds of {args.seconds:g} s each, interleaved\n")
    print("| intra-op threads | batches/s | p50 ms | p99 ms | max ms | throttled (kernel) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n, seconds in latencies.items():
        ms = 1000 * np.array(seconds)
        rate = len(ms) / (args.rounds * args.seconds)
        # v2 counts microseconds, v1 nanoseconds: both shown as seconds.
        unit = 1e-6 if "throttled_usec" in _throttling() else 1e-9
        p50, p99 = np.percentile(ms, [50, 99])
        print(
            f"| {n} | {rate:.1f} | {p50:.1f} | {p99:.1f} | {ms.max():.1f} "
            f"| {throttled[n] * unit:.1f} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
