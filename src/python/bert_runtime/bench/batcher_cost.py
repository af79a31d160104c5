"""The batcher's own CPU per text: closed-loop clients over a runner with no model.

The engine process of a GPU server spends its core on this path (docs/BENCHMARKS.md, H200): each
submission's admission, the batch's choice, padding and pooling of the batch, and every text's
result back to its caller. Here many clients each submit, await their results and submit again
(one text, or 32, a submission), through a real Batcher with CUDA's default budget (256 rows,
32768 tokens) over a runner that pads the batch and pools zeros instead of running a model. The
process's CPU time per text is the figure; compare trees by running it with another
`PYTHONPATH` (a git worktree of an older commit).

    PYTHONPATH=src/python python3 -m bert_runtime.bench.batcher_cost --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bert_runtime.config import BatchBudget, BatcherConfig
from bert_runtime.serving.batcher import Batcher
from bert_runtime.serving.planner import BatchPlanner
from bert_runtime.serving.tasks import Embedding, EmbedRequest, pooled

EMBED = EmbedRequest()
WIDTH = 384


class NoModelRunner:
    """Pads the batch and pools a zero output: the batch's work around a model, without one."""

    def __init__(self, planner: BatchPlanner) -> None:
        self.planner = planner

    def run(self, sequences: Sequence[np.ndarray], requests: Sequence[Any]) -> list[Any]:
        batch = self.planner.pad(sequences)
        rows = np.zeros((len(sequences), WIDTH), np.float32)
        vectors = pooled(rows, rows, [False] * len(requests), [True] * len(requests))
        return [Embedding(v, int(n)) for v, n in zip(vectors, batch.lengths, strict=True)]


async def _closed_loop(per_request: int, clients: int, seconds: float) -> tuple[float, float]:
    """(texts/s, CPU us per text) of `clients` submitting `per_request` texts each, in turn."""
    planner = BatchPlanner(BatchBudget(256, 32768), 0, 512)
    lengths = np.random.default_rng(0).integers(5, 40, 4096)
    sequences = [np.arange(int(n), dtype=np.int32) for n in lengths]
    done, stop = 0, False
    async with Batcher(NoModelRunner(planner), BatcherConfig()) as batcher:

        async def client(start: int) -> None:
            nonlocal done
            at = start
            while not stop:
                chunk = [sequences[(at + i) % len(sequences)] for i in range(per_request)]
                await batcher.submit_many(chunk, [EMBED] * per_request)
                done, at = done + per_request, at + per_request
                await asyncio.sleep(0)

        tasks = [asyncio.create_task(client(97 * i)) for i in range(clients)]
        await asyncio.sleep(0.5)
        texts, cpu, wall = done, time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        texts, cpu, wall = done - texts, time.process_time() - cpu, time.perf_counter() - wall
        stop = True
        await asyncio.gather(*tasks)
    return texts / wall, 1e6 * cpu / texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    print("| submissions | rounds | texts/s (median) | CPU us per text (median; rounds) |")
    print("|---|---:|---:|---|")
    for per_request, clients in ((1, 256), (32, 32)):
        runs = [
            asyncio.run(_closed_loop(per_request, clients, args.seconds))
            for _ in range(args.rounds)
        ]
        rates, costs = zip(*runs, strict=True)
        each = ", ".join(f"{c:.1f}" for c in costs)
        print(
            f"| {clients} clients x {per_request} text(s) | {args.rounds} "
            f"| {statistics.median(rates):,.0f} | {statistics.median(costs):.1f}; {each} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
