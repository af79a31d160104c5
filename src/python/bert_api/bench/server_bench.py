"""Server benchmark: the HTTP service against the bare engine, in the same run.

1. Batched clients: requests of 32 texts from a few concurrent clients, texts/s through the server
   vs texts/s of `Engine.run` on length-sorted batches of 32 of the same texts (its best case).
2. Single-text requests at concurrency 32: requests/s, p50 and p99 latency.

The model is a prepared directory (default: a random bert-base-sized model generated and prepared
here).

    ./pants package src/python/bert_api/bench:server_bench
    python3.11 dist/src.python.bert_api.bench/server_bench.pex --workdir /tmp/bench-work
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import numpy as np

from bert_api.testing import run_server
from bert_runtime.bench.random_bert import write_random_bert
from bert_runtime.config import EngineConfig, Precision
from bert_runtime.manifest import MANIFEST_NAME
from bert_runtime.preparation.prepare import prepare
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.tasks import EmbedRequest


def _texts(count: int, seed: int) -> list[str]:
    """Texts of 8-40 words, each one token in the random model's vocabulary (w0, w1, ...)."""
    rng = np.random.default_rng(seed)
    return [
        " ".join(f"w{n}" for n in rng.integers(0, 20000, size=int(rng.integers(8, 40))))
        for _ in range(count)
    ]


def _engine_rate(model: Path, texts: list[str], seconds: float) -> float:
    """The engine's best case: batches of 32 texts of similar length (least padding), no HTTP."""
    engine = Engine(model, EngineConfig(max_sequence_length=128))
    ordered = sorted(texts, key=lambda text: len(engine.tokenizer.encode([text])[0]))
    batches = [ordered[i : i + 32] for i in range(0, len(ordered), 32)]
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for batch in batches:
            sequences = engine.tokenizer.encode(batch)
            engine.run(sequences, [EmbedRequest()] * len(sequences))
            done += len(batch)
    return done / (time.perf_counter() - started)


async def _drive(
    url: str, bodies: Sequence[Mapping[str, object]], concurrency: int, seconds: float
) -> list[float]:
    """Send bodies round-robin from `concurrency` clients for `seconds`; latencies of 200s."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(index: int, http: httpx.AsyncClient) -> None:
        n = index
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            # Throughput, not admission: a closed-loop client waits as long as its answer takes
            # (on 2 cores three 32-text bert-base requests queue close to the 5 s default).
            response = await http.post(
                "/embed", json=bodies[n % len(bodies)], headers={"X-Request-Timeout": "600"}
            )
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)
            n += concurrency

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:
        await asyncio.gather(*(client(i, http) for i in range(concurrency)))
    return latencies


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, help="a prepared model directory")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batched-clients", type=int, default=3)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="server-bench-"))
    model = args.model or workdir / "fp32"
    if not (model / MANIFEST_NAME).is_file():
        prepare(str(write_random_bert(workdir / "source")), model, precision=Precision.FP32)

    texts = _texts(32 * 8, seed=1)
    engine_rate = _engine_rate(model, texts, args.seconds)
    env = {
        "MODEL_NAME": str(model),
        "BATCH_SIZE": "32",
        "MAX_QUEUE_DELAY_MS": "5",
        "LOG_LEVEL": "WARNING",
    }
    with run_server(env, workdir) as server:
        batched = [{"inputs": texts[i : i + 32]} for i in range(0, len(texts), 32)]
        asyncio.run(_drive(server.url, batched, args.batched_clients, 3))  # warm-up
        latencies = asyncio.run(_drive(server.url, batched, args.batched_clients, args.seconds))
        server_rate = 32 * len(latencies) / args.seconds
        singles = [{"inputs": t} for t in texts]
        single_latencies = asyncio.run(_drive(server.url, singles, 32, args.seconds))
        server.terminate()

    cpus = os.cpu_count()
    print(
        f"\n## Server vs engine (fp32, {cpus} cores shared by server and client, "
        f"{args.seconds:.0f}s each)\n"
    )
    print("| measure | value |\n|---|---:|")
    print(f"| engine alone, batches of 32 (texts/s) | {engine_rate:.1f} |")
    print(
        f"| server, {args.batched_clients} clients x 32-text requests (texts/s) "
        f"| {server_rate:.1f} |"
    )
    print(f"| server / engine | {100 * server_rate / engine_rate:.0f}% |")
    print(f"| batched request latency p50 (ms) | {1000 * statistics.median(latencies):.0f} |")
    cuts = np.percentile(single_latencies, [50, 99]) * 1000
    print(
        "| single-text requests at concurrency 32 (req/s) "
        f"| {len(single_latencies) / args.seconds:.1f} |"
    )
    print(f"| single-text latency p50 / p99 (ms) | {cuts[0]:.0f} / {cuts[1]:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
