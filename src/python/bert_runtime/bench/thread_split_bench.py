"""The thread split's sizes, measured for both clocks: one intra-op thread against the full pool.

The engine chooses the split at warm-up by wall time alone (serving/thread_split.py); this prints,
for each size it measures, the wall and the CPU time of a run on each session (the full pool is
the baseline: every batch ran on it before), their medians over interleaved rounds, and the split
the engine chose. CPU time is this process's, all its threads.

    ./pants package src/python/bert_runtime/bench:thread_split_bench
    python3.11 dist/src.python.bert_runtime.bench/thread_split_bench.pex --model <prepared dir>
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bert_runtime.config import EngineConfig
from bert_runtime.manifest import MODEL_NAME
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.session import create_session
from bert_runtime.serving.thread_split import pool_threads, sizes


def main(argv: list[str] | None = None) -> int:
    """Print the table (see the module's doc)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a prepared model directory")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    engine = Engine(args.model, EngineConfig())
    threads = pool_threads(engine.config)
    if threads is None or threads < 2:
        print("the pool is set by hand or has one thread: no split to measure", file=sys.stderr)
        return 2
    split = engine._runner.split
    # The engine's own one-thread session where warm-up kept one, else one made here.
    one = (
        split.session
        if split
        else create_session(args.model / MODEL_NAME, EngineConfig(intra_op_threads=1))
    )
    sessions = {"full pool": engine._session, "one thread": one}
    chosen = split.max_tokens if split else 0
    print(f"{args.model.name}: pool of {threads} threads; the engine's split: ", end="")
    print(split.describe() if split else "none (every batch on the full pool)")
    print(f"medians of {args.rounds} interleaved rounds; us a run\n")
    print("| batch (rows x tokens) | pool wall | pool CPU | one wall | one CPU | runs on |")
    print("|---|---:|---:|---:|---:|---|")
    for rows, length in sizes(engine.planner, engine.max_length):
        feeds = engine._runner.feeds(engine.pad([np.zeros(length, np.int32)] * rows))
        taken: dict[str, dict[str, list[float]]] = {
            name: {"wall": [], "cpu": []} for name in sessions
        }
        for session in sessions.values():
            session.run(["mean_embedding"], feeds)
        for round_index in range(args.rounds):
            order = list(sessions) if round_index % 2 else list(sessions)[::-1]
            for name in order:
                wall, cpu = time.perf_counter(), time.process_time()
                sessions[name].run(["mean_embedding"], feeds)
                taken[name]["wall"].append(time.perf_counter() - wall)
                taken[name]["cpu"].append(time.process_time() - cpu)
        cells = [
            f"{1e6 * statistics.median(taken[name][clock]):,.0f}"
            for name in sessions
            for clock in ("wall", "cpu")
        ]
        where = "one thread" if rows * length <= chosen else "full pool"
        print(f"| {rows} x {length} | " + " | ".join(cells) + f" | {where} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
