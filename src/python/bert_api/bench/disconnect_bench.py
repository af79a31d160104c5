"""Clients that disconnect mid-request: each is one 499, nothing is left queued, memory stays flat.

Before issue 26, 35-70% of the clients that left were counted as 500 (all that left before their
body was read, and malformed chunked bodies), and a departed client's texts could still run. This
sends `--clients` inference requests (default settings) whose clients leave, `--concurrency` at a
time, half of them in each way:
- mid-body: the headers and part of the body (none of it, for some), then close;
- queued: the whole request, with X-Request-Timeout so it is admitted behind the others, then
  close after 50-500 ms without reading. A client whose answer came before it left is not a
  departure: it is counted apart and replaced, so exactly `--clients` clients leave unanswered.

Targets: `inference_requests_total{status="499"}` rises by exactly the number of clients that
left, and by nothing else; queue depth and active requests are 0 afterwards; the server's VmRSS
after is within 5% of before (both taken after a warm-up round of the same traffic).

    ./pants package src/python/bert_api/bench:disconnect_bench
    python3.11 dist/src.python.bert_api.bench/disconnect_bench.pex --model MINILM_DIR --cache /tmp/c
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence

import msgspec
import uvloop

from bert_api.bench.harness import (
    add_model_arguments,
    delta,
    host_lines,
    log_problems,
    rss_mib,
    scrape,
    service,
    table,
    texts,
    verdict,
)
from bert_api.bench.rawhttp import json_post
from bert_api.routes_common import TIMEOUT_HEADER

STATUSES = ("200", "400", "404", "408", "413", "422", "429", "499", "500", "503")


async def leave(port: int, raw: bytes, kind: str, rng: random.Random) -> bool:
    """One client that leaves mid-request; False if its answer came before it could leave."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if kind == "mid-body":
            split = raw.index(b"\r\n\r\n") + 4
            writer.write(raw[: split + rng.randrange(0, (len(raw) - split) // 2 + 1)])
            await writer.drain()
            await asyncio.sleep(rng.uniform(0, 0.1))
            return True
        writer.write(raw)
        await writer.drain()
        await asyncio.sleep(rng.uniform(0.05, 0.5))
        try:
            answered = await asyncio.wait_for(reader.read(1), 0.001)
        except TimeoutError:
            return True
        return not answered  # b"": the server closed without answering, still a departure
    finally:
        writer.close()


async def depart(
    port: int, requests: Sequence[bytes], clients: int, concurrency: int, seed: int
) -> Counter[str]:
    """Until `clients` clients have left unanswered; counts by kind, and those answered."""
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    gate = asyncio.Semaphore(concurrency)
    left = 0

    async def one(n: int) -> None:
        nonlocal left
        kind = "mid-body" if n % 2 else "queued"
        async with gate:
            while left < clients:
                if await leave(port, requests[n % len(requests)], kind, rng):
                    left += 1
                    counts[f"left: {kind}"] += 1
                    return
                counts[f"answered before leaving: {kind}"] += 1

    await asyncio.gather(*(one(n) for n in range(clients)))
    return counts


async def settle(url: str, seconds: float = 120) -> dict[str, float]:
    """Metrics once nothing is queued or running (or after `seconds`)."""
    stop = time.monotonic() + seconds
    while True:
        metrics = await asyncio.to_thread(scrape, url)
        idle = not metrics["inference_queue_depth"] and not metrics["inference_active_requests"]
        if idle or time.monotonic() > stop:
            return metrics
        await asyncio.sleep(0.5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--warm-up", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--texts-per-request", type=int, default=8)
    parser.add_argument(
        "--more-rounds", type=int, default=4, help="rounds after the measured one: RSS trend"
    )
    args = parser.parse_args(argv)
    pool = texts(args.texts_per_request * 32, seed=4)
    k = args.texts_per_request
    requests = [
        json_post(
            "/embed", msgspec.json.encode({"inputs": pool[i : i + k]}), {TIMEOUT_HEADER: "600"}
        )
        for i in range(0, len(pool), k)
    ]
    print("\n".join(host_lines()))
    with service(args) as server:
        port = int(server.url.rsplit(":", 1)[1])
        pid = server.process.pid
        uvloop.run(depart(port, requests, args.warm_up, args.concurrency, seed=1))
        before = uvloop.run(settle(server.url))
        rss_before = rss_mib(pid)
        started = time.perf_counter()
        counts = uvloop.run(depart(port, requests, args.clients, args.concurrency, seed=2))
        elapsed = time.perf_counter() - started
        after = uvloop.run(settle(server.url))
        time.sleep(2)
        rss_after = rss_mib(pid)
        trend = [rss_before, rss_after]
        for n in range(args.more_rounds):
            uvloop.run(depart(port, requests, args.clients, args.concurrency, seed=3 + n))
            uvloop.run(settle(server.url))
            time.sleep(2)
            trend.append(rss_mib(pid))
        server.terminate()
        tracebacks, errors = log_problems(server.log)
    left = sum(n for kind, n in counts.items() if kind.startswith("left"))
    answered = sum(counts.values()) - left
    by_status = {
        s: delta(after, before, f'inference_requests_total{{status="{s}"}}') for s in STATUSES
    }
    client_closed = by_status["499"]
    others = {s: n for s, n in by_status.items() if n and s != "499"}
    growth = rss_after - rss_before
    cancelled = delta(after, before, 'inference_dropped_texts_total{reason="cancelled"}')
    rows = [
        ("clients that left unanswered", ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))),
        ("time (s)", f"{elapsed:.1f}"),
        ('inference_requests_total{status="499"} rise', f"{client_closed:.0f}"),
        ("other statuses' rise", ", ".join(f"{s}: {n:.0f}" for s, n in others.items()) or "none"),
        ('dropped texts {reason="cancelled"} rise', f"{cancelled:.0f}"),
        ("texts run by the model", f"{delta(after, before, 'inference_batch_size_sum'):.0f}"),
        (
            "queue depth / active requests after",
            f"{after['inference_queue_depth']:.0f} / " f"{after['inference_active_requests']:.0f}",
        ),
        (
            "server VmRSS before / after (MiB)",
            f"{rss_before:.1f} / {rss_after:.1f} ({growth:+.1f})",
        ),
        (
            f"VmRSS before and after each round of {args.clients} (MiB)",
            " / ".join(f"{rss:.1f}" for rss in trend),
        ),
        ("server log: tracebacks / ERROR lines", f"{tracebacks} / {len(errors)}"),
    ]
    print(table(f"{args.clients} clients leaving mid-request, {args.concurrency} at a time", rows))
    targets = [
        (
            f"{args.clients} x 499, nothing else",
            client_closed == left == args.clients and sum(others.values()) == answered,
        ),
        ("queue depth 0 after", after["inference_queue_depth"] == 0),
        ("RSS flat (within 5%)", abs(growth) <= 0.05 * rss_before),
        ("no tracebacks", tracebacks == 0),
    ]
    print("\n| target | result |\n|---|---|")
    for name, met in targets:
        print(f"| {name} | {verdict(met)} |")
    for line in errors[:10]:
        print(f"server log: {line}")
    return 0 if all(met for _, met in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
