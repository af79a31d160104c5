"""How the batch token budget (`max_batch_tokens`, MAX_BATCH_TOKENS) changes CPU throughput.

32 texts are run as the planner's batches within each budget (the way the batcher and direct calls
form them). One process, one Engine per budget over the same prepared model (0 = room for all 32 at
full length, the baseline: one whole batch unless the CPU's fill bound cuts it by length),
interleaved round by round in a rotating order so this host's drift spreads over every budget.
Prints seq/s per workload and budget, relative to that baseline: the evidence behind the default in
docs/BENCHMARKS.md.

    python slice_sweep.pex --model /tmp/bench-work/fp32 --rounds 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bert_runtime.config import EngineConfig
from bert_runtime.serving.engine import Engine

from .workload import embed_planned, random_sequences

# 32 texts: full length at seq 128 and 32, lengths like the batcher groups, and a mix like
# embedding traffic (None: the peer benchmark's lengths, scripts/peer_bench/workload.py).
WORKLOADS: dict[str, tuple[int, int] | None] = {
    "seq 128 x 32": (128, 128),
    "seq 32 x 32": (32, 32),
    "lengths 8-40 x 32, sorted": (8, 40),
    "lengths 60-80 x 32, sorted": (60, 80),
    "lengths 5-120 (mean ~40) x 32, mixed": None,
}
BUDGETS = (0, 256, 512, 1024, 2048)
# Budget 0 in the table ("whole"): room for all 32 texts at full length in one batch.
WHOLE = 32 * 128


def _batch(engine: Engine, span: tuple[int, int] | None) -> list[np.ndarray]:
    """
    32 sequences with lengths drawn from `span`, shortest first; for None, in arrival order
    with the peer benchmark's lengths (5 + gamma(1.6, 22) tokens, at most 120: mean ~40).
    """
    if span is None:
        rng = np.random.default_rng(5120)
        drawn = np.rint(5 + rng.gamma(1.6, 22.0, 32)).clip(5, 120).astype(int).tolist()
        return random_sequences(rng, drawn, engine.manifest.vocab_size)
    rng = np.random.default_rng(span[0] * 1000 + span[1])
    lengths = sorted(rng.integers(span[0], span[1] + 1, 32).tolist())
    return random_sequences(rng, lengths, engine.manifest.vocab_size)


def sweep(
    model: Path, threads: int, rounds: int, budgets: Sequence[int] = BUDGETS
) -> dict[str, dict[int, float]]:
    """Median seq/s for every workload and budget (0: room for all 32 at once, the baseline)."""
    budgets = (0, *(b for b in budgets if b))
    engines = {
        budget: Engine(
            model,
            EngineConfig(
                max_sequence_length=128,
                intra_op_threads=threads,
                max_batch_tokens=budget or WHOLE,
            ),
        )
        for budget in budgets
    }
    batches = {w: _batch(engines[0], span) for w, span in WORKLOADS.items()}
    times: dict[str, dict[int, list[float]]] = {w: {b: [] for b in budgets} for w in WORKLOADS}
    for round_index in range(rounds + 1):  # round 0 is an untimed warm-up of every shape
        turn = round_index % len(budgets)
        order = budgets[turn:] + budgets[:turn]
        for workload, batch in batches.items():
            for budget in order:
                started = time.perf_counter()
                embed_planned(engines[budget], batch)
                if round_index:
                    times[workload][budget].append(time.perf_counter() - started)
        print(f"round {round_index}/{rounds} done", file=sys.stderr)
    return {
        workload: {budget: 32 / statistics.median(runs) for budget, runs in by_budget.items()}
        for workload, by_budget in times.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a prepared CPU model directory")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS[1:]))
    args = parser.parse_args(argv)
    rates = sweep(args.model, args.threads, args.rounds, args.budgets)
    setup = f"{args.model.name}, threads={args.threads}, {args.rounds} rounds"
    print(f"\n## Batch token budget sweep ({setup})\n")
    columns = next(iter(rates.values()))
    header = " | ".join(f"{b} tokens" if b else "whole" for b in columns)
    print(f"| workload (seq/s, vs whole) | {header} |")
    print("|---|" + "---:|" * len(columns))
    for workload, by_budget in rates.items():
        whole = by_budget[0]
        cells = " | ".join(f"{rate:.2f} ({rate / whole:.2f}x)" for rate in by_budget.values())
        print(f"| {workload} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
