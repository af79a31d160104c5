"""The engine process's own CPU per text: workers' submissions over the socket, no model.

On a GPU the engine process is the server's ceiling: one Python process takes every worker's
submissions off the Unix socket, batches them, pads and pools each batch and sends each answer
back (docs/BENCHMARKS.md, H200: one core at 8 workers). Here stand-in workers (processes with a
plain socket each, several submissions in flight) drive a real EngineServer, whose batcher runs
CUDA's default budget (256 rows, 32768 tokens; `--device cpu`: the CPU's, 32 rows, 1,024 tokens,
fill 0.8) over batcher_cost's runner, which pads the batch and pools zeros instead of running a
model. The engine process's CPU time per text (its every
thread; the workers are other processes) is the figure. To compare with an older tree, copy this
file and heap.py into a git worktree of it and run it there with `--no-freeze`:

    PYTHONPATH=src/python python3 -m bert_api.bench.engine_link_cost --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, cast

import numpy as np

from bert_api.engine_server import EngineServer
from bert_api.heap import freeze_long_lived
from bert_api.hosting import Status
from bert_api.ipc import Embedded, Frames, decode_to_worker, frame, submit_message
from bert_api.model_host import ModelHost
from bert_runtime.bench.batcher_cost import EMBED, NoModelRunner
from bert_runtime.config import BatcherConfig, Device, default_budget
from bert_runtime.serving.batch_protocol import BatchStats
from bert_runtime.serving.batcher import Batcher
from bert_runtime.serving.planner import BatchPlanner

# (texts a submission, workers, submissions in flight per worker)
SHAPES = ((32, 8, 4), (1, 8, 32))


@dataclass
class _Host:
    """What EngineServer reads of a ModelHost: the batcher and the status it reports."""

    batcher: Batcher
    status: Status = Status.READY
    status_listeners: list[Any] = field(default_factory=list)
    engine: None = None
    model_dir: None = None
    error: None = None


def _worker(path: str, per_request: int, in_flight: int, seed: int, stop: Event) -> None:
    """A stand-in worker: `in_flight` submissions outstanding, a new one for each answer."""
    lengths = np.random.default_rng(seed).integers(5, 40, 512)
    sequences = [np.arange(int(n), dtype=np.int32) for n in lengths]
    bodies = [
        frame(
            submit_message(
                i,
                [sequences[(i * per_request + j) % 512] for j in range(per_request)],
                [EMBED] * per_request,
                None,
            )
        )
        for i in range(64)
    ]
    link = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    link.connect(path)
    # Never blocked for long: at the end the engine stops reading while a send may be under way.
    link.settimeout(1.0)
    frames = Frames()
    with contextlib.suppress(OSError), link:  # the link closes, or times out, at the end
        for sent in range(in_flight):
            link.sendall(bodies[sent % 64])
        while not stop.is_set():
            data = link.recv(1 << 20)
            if not data:
                break
            for body in frames.feed(data):
                if isinstance(decode_to_worker(body), Embedded):
                    sent += 1
                    link.sendall(bodies[sent % 64])


async def _measure(
    per_request: int,
    workers: int,
    in_flight: int,
    seconds: float,
    freeze: bool = True,
    device: Device = Device.CUDA,
) -> tuple[float, float, float]:
    """(texts/s, engine CPU us per text, mean batch) for one shape, on `device`'s batch budget."""
    planner = BatchPlanner(default_budget(device), 0, 512)
    answered = batches = 0

    def count(stats: BatchStats) -> None:
        nonlocal answered, batches
        answered, batches = answered + stats.size, batches + 1

    async with Batcher(NoModelRunner(planner), BatcherConfig(), on_batch=count) as batcher:
        with tempfile.TemporaryDirectory(prefix="bs-link-", dir="/tmp") as scratch:
            path = Path(scratch) / "engine.sock"
            server = EngineServer(cast(ModelHost, _Host(batcher)), path)
            await server.start()
            context = multiprocessing.get_context("spawn")
            stop = context.Event()
            processes = [
                context.Process(
                    target=_worker, args=(str(path), per_request, in_flight, seed, stop)
                )
                for seed in range(workers)
            ]
            for process in processes:
                process.start()
            await asyncio.sleep(2.0)  # the workers start (spawn) and warm up
            if freeze:  # as the engine process does once its model is loaded
                freeze_long_lived()
            texts, runs = answered, batches
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.sleep(seconds)
            texts, runs, cpu = answered - texts, batches - runs, time.process_time() - cpu
            wall = time.perf_counter() - wall
            stop.set()
            await server.close()
            for process in processes:
                process.join(timeout=10)
    return texts / wall, 1e6 * cpu / max(texts, 1), texts / max(runs, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument(
        "--device",
        choices=[d.value for d in Device],
        default=Device.CUDA.value,
        help="whose default batch budget the batcher runs (cuda: 256 rows; cpu: 32 rows, fill 0.8)",
    )
    parser.add_argument(
        "--no-freeze",
        action="store_true",
        help="leave the heap unfrozen, as engine processes before heap.py were",
    )
    args = parser.parse_args(argv)
    import uvloop

    print(
        "| submissions | rounds | texts/s (median) | mean batch (median) "
        "| engine CPU us per text (median; rounds) |"
    )
    print("|---|---:|---:|---:|---|")
    for per_request, workers, in_flight in SHAPES:
        runs = []
        for _ in range(args.rounds):
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                shape = _measure(
                    per_request,
                    workers,
                    in_flight,
                    args.seconds,
                    not args.no_freeze,
                    Device(args.device),
                )
                runs.append(runner.run(shape))
        rates, costs, sizes = zip(*runs, strict=True)
        each = ", ".join(f"{c:.1f}" for c in costs)
        print(
            f"| {workers} workers x {in_flight} in flight x {per_request} text(s) "
            f"| {args.rounds} | {statistics.median(rates):,.0f} | {statistics.median(sizes):.1f} "
            f"| {statistics.median(costs):.1f}; {each} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
