"""Health checks while the model is saturated with the largest requests the limits allow (issue 26).

Tokenizing one request near the body limit used to run on the event loop: `/health` then took 5 s
and liveness probes missed Kubernetes' 3 s timeout, so a pod that was merely busy got restarted.
This keeps the service (default settings) busy with one client sending maximum-size /embed
requests back to back (MAX_ITEMS_PER_REQUEST texts of `--chars` characters, within
MAX_CHARS_PER_ITEM and MAX_BODY_BYTES), while two probers hit `/v2/health/live` and `/health`
every `--interval` seconds on fresh connections, as the kubelet does. The load sends
X-Request-Timeout (`--budget`, 300 s): all 256 texts of a request must start within its budget,
and at the default 5 s a 256 x 128-token request is refused (429) on a slow host after part of
it ran; with the header it succeeds, so the answer's encoding (256 vectors) is measured as well.

Target: p99 of each probe <= 100 ms. The prober shares the client process with the load, whose
work is only socket reads and writes (answers are not parsed), and reports its own lateness
(how late each probe left against its schedule) so a starved client is not blamed on the server.

    ./pants package src/python/bert_api/bench:health_bench
    python3.11 dist/src.python.bert_api.bench/health_bench.pex --model MINILM_DIR --cache /tmp/c
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from collections.abc import Sequence

import msgspec
import numpy as np
import uvloop

from bert_api.bench.harness import (
    WORDS,
    add_model_arguments,
    delta,
    host_lines,
    log_problems,
    percentile,
    scrape,
    service,
    table,
    verdict,
)
from bert_api.bench.rawhttp import exchange, json_post, request_bytes
from bert_api.routes_common import TIMEOUT_HEADER
from bert_api.settings import Settings

TARGET_S = 0.1


def largest_requests(chars: int, count: int, budget: float) -> list[bytes]:
    """`count` different /embed requests of the most texts allowed, `chars` characters each."""
    limits = Settings()
    items, chars = limits.max_items_per_request, min(chars, limits.max_chars_per_item)
    requests = []
    for seed in range(count):
        words = " ".join(np.random.default_rng(seed).choice(WORDS, size=items * chars // 4))
        inputs = [words[i * chars : (i + 1) * chars] for i in range(items)]
        body = msgspec.json.encode({"inputs": inputs})
        if len(body) > limits.max_body_bytes:
            raise ValueError(f"{len(body)} bytes is over MAX_BODY_BYTES: lower --chars")
        headers = {TIMEOUT_HEADER: f"{budget:g}"} if budget else {}
        requests.append(json_post("/embed", body, headers))
    return requests


async def load(port: int, requests: Sequence[bytes], stop: float, out: Counter[str]) -> None:
    """One client, back to back; counts answers by status."""
    n = 0
    while time.perf_counter() < stop:
        try:
            answer = await exchange("127.0.0.1", port, requests[n % len(requests)])
            out[str(answer.status)] += 1
        except (OSError, asyncio.IncompleteReadError) as error:
            out[type(error).__name__] += 1
        n += 1


async def probe(
    port: int, path: str, interval: float, stop: float
) -> tuple[list[float], list[float], Counter[str]]:
    """Latencies of GET `path` every `interval` s, how late each left, and the statuses."""
    raw = request_bytes("GET", path)
    latencies: list[float] = []
    lateness: list[float] = []
    statuses: Counter[str] = Counter()
    due = time.perf_counter()
    while due < stop:
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        started = time.perf_counter()
        lateness.append(started - due)
        try:
            answer = await asyncio.wait_for(exchange("127.0.0.1", port, raw), 30)
            statuses[str(answer.status)] += 1
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
            statuses[type(error).__name__] += 1
        latencies.append(time.perf_counter() - started)
        due += interval
    return latencies, lateness, statuses


async def run(
    port: int, requests: Sequence[bytes], seconds: float, interval: float
) -> tuple[Counter[str], dict[str, tuple[list[float], list[float], Counter[str]]]]:
    stop = time.perf_counter() + seconds
    answers: Counter[str] = Counter()
    load_task = asyncio.create_task(load(port, requests, stop, answers))
    await asyncio.sleep(2)  # the first request is tokenizing and queued
    paths = ("/v2/health/live", "/health")
    results = await asyncio.gather(*(probe(port, path, interval, stop) for path in paths))
    await load_task
    return answers, dict(zip(paths, results, strict=True))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--chars", type=int, default=8000, help="characters per text")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument(
        "--budget",
        type=float,
        default=300.0,
        help="the load's X-Request-Timeout in seconds (0: none, the server's 5 s default)",
    )
    args = parser.parse_args(argv)
    requests = largest_requests(args.chars, 4, args.budget)
    print("\n".join(host_lines()))
    with service(args) as server:
        port = int(server.url.rsplit(":", 1)[1])
        before = scrape(server.url)
        answers, probes = uvloop.run(run(port, requests, args.seconds, args.interval))
        time.sleep(1)
        after = scrape(server.url)
        server.terminate()
        tracebacks, errors = log_problems(server.log)
    ran = delta(after, before, "inference_batch_size_sum")
    rows: list[tuple[str, object]] = [
        (
            "load",
            f"1 client, {len(requests[0]):,} bytes/request ({args.chars} chars x 256), "
            + (f"X-Request-Timeout {args.budget:g}" if args.budget else "no X-Request-Timeout"),
        ),
        ("load answers", ", ".join(f"{k}: {v}" for k, v in sorted(answers.items()))),
        ("texts run by the model", f"{ran:.0f} ({ran / args.seconds:.0f}/s)"),
        ("server log: tracebacks / ERROR lines", f"{tracebacks} / {len(errors)}"),
    ]
    met = True
    for path, (latencies, lateness, statuses) in probes.items():
        p99 = percentile(latencies, 99)
        met = met and p99 <= TARGET_S and set(statuses) == {"200"}
        rows += [
            (f"`{path}` probes", ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))),
            (
                f"`{path}` p50 / p99 / max (ms)",
                f"{1000 * percentile(latencies, 50):.1f} / {1000 * p99:.1f} / "
                f"{1000 * max(latencies):.1f}",
            ),
            (
                f"`{path}` over 100 ms / over 3 s",
                f"{sum(x > TARGET_S for x in latencies)} / " f"{sum(x > 3 for x in latencies)}",
            ),
            (f"`{path}` prober lateness p99 (ms)", f"{1000 * percentile(lateness, 99):.1f}"),
        ]
    print(table(f"Health while saturated with maximum-size requests, {args.seconds:.0f} s", rows))
    print(f"\n| target | result |\n|---|---|\n| both probes p99 <= 100 ms | {verdict(met)} |")
    for line in errors[:10]:
        print(f"server log: {line}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
