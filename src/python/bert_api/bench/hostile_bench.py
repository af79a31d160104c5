"""Hostile traffic: >= 10,000 generated requests; after them, the service is healthy and exact.

Three generators against one service with default settings:
1. schemathesis against the service's own OpenAPI schema, every operation, in positive mode
   (bodies the schema allows; their answers are also checked against the schema, as
   openapi_fuzz_test.py does) and negative mode (bodies it forbids);
2. malformed HTTP on raw sockets (hostile_http.py), with a burst of slow and idle clients;
3. malformed JSON on every POST route (hostile_json.py).

Targets: no 5xx, no traceback in the server's log, and afterwards the service is healthy and
bit-for-bit correct: a fixed text's embedding, as JSON from /embed and as raw float32 bytes
(base64) from /v1/embeddings, is byte-identical to the one taken before.

    ./pants package src/python/bert_api/bench:hostile_bench
    python3.11 dist/src.python.bert_api.bench/hostile_bench.pex --model MINILM_DIR --cache /tmp/c
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import httpx
import requests
import schemathesis
import uvloop
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from bert_api.bench.harness import (
    add_model_arguments,
    host_lines,
    log_problems,
    scrape,
    service,
    table,
    verdict,
)
from bert_api.bench.hostile_http import fast_cases, slow_cases
from bert_api.bench.hostile_json import json_cases
from bert_api.bench.rawhttp import Case, play

FIXED_TEXT = "The quick brown fox jumps over the lazy dog."
Outcomes = defaultdict[str, Counter[str]]


def reference(url: str) -> tuple[bytes, str]:
    """The fixed text's /embed answer (bytes) and its float32 vector from /v1/embeddings."""
    embed = httpx.post(f"{url}/embed", json={"inputs": [FIXED_TEXT]}, timeout=60)
    openai = httpx.post(
        f"{url}/v1/embeddings",
        json={"input": [FIXED_TEXT], "encoding_format": "base64"},
        timeout=60,
    )
    embed.raise_for_status()
    openai.raise_for_status()
    return embed.content, str(openai.json()["data"][0]["embedding"])


def fuzz_schema(url: str, examples: int, outcomes: Outcomes) -> tuple[Counter[str], list[str]]:
    """
    Run schemathesis on every operation in both modes: positive answers off the schema by
    operation, and the operations and modes it could not generate cases for.
    """
    schema = schemathesis.openapi.from_url(f"{url}/docs/openapi.json")
    session = requests.Session()
    nonconforming: Counter[str] = Counter()
    skipped: list[str] = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            skipped.append(f"invalid operation: {result.err()}")
            continue
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            family = f"schemathesis {mode.value}"

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                try:
                    response = case.call(base_url=url, session=session, timeout=60)
                except requests.RequestException as error:
                    outcomes[family][type(error).__name__] += 1  # noqa: B023
                    return
                outcomes[family][str(response.status_code)] += 1  # noqa: B023
                if mode is GenerationMode.POSITIVE:  # noqa: B023
                    try:
                        case.validate_response(response, excluded_checks=[positive_data_acceptance])
                    except AssertionError:
                        nonconforming[operation.label] += 1  # noqa: B023

            try:
                check()
            except Exception as error:  # - hypothesis gave up on an operation: say so
                skipped.append(f"{operation.label} ({mode.value}: {type(error).__name__})")
    return nonconforming, skipped


async def play_all(port: int, cases: Iterable[Case], concurrency: int, outcomes: Outcomes) -> None:
    """Play `cases` with at most `concurrency` at a time; outcomes by family."""
    gate = asyncio.Semaphore(concurrency)

    async def one(case: Case) -> None:
        async with gate:
            try:
                outcomes[case.family][await play(port, case)] += 1
            except OSError as error:
                outcomes[case.family][f"connect failed ({type(error).__name__})"] += 1

    await asyncio.gather(*(one(case) for case in cases))


async def raw_traffic(port: int, args: argparse.Namespace, outcomes: Outcomes) -> None:
    """The slow burst alongside the fast malformed HTTP and JSON cases."""
    slow = asyncio.create_task(play_all(port, slow_cases(args.slow), args.slow, outcomes))
    json_requests = (Case(family, (raw,)) for family, raw in json_cases(args.json, args.seed))
    await asyncio.gather(
        play_all(port, fast_cases(args.raw, args.seed), 100, outcomes),
        play_all(port, json_requests, 16, outcomes),
    )
    await slow


FIVE_XX = re.compile(r"(^|\+)5\d\d")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--examples", type=int, default=200, help="per operation and mode")
    parser.add_argument("--raw", type=int, default=4000, help="malformed HTTP cases")
    parser.add_argument("--json", type=int, default=4000, help="malformed JSON cases")
    parser.add_argument("--slow", type=int, default=200, help="slow and idle clients")
    parser.add_argument("--seed", type=int, default=26)
    args = parser.parse_args(argv)
    print("\n".join(host_lines()))
    outcomes: Outcomes = defaultdict(Counter)
    with service(args) as server:
        port = int(server.url.rsplit(":", 1)[1])
        before = reference(server.url)
        started = time.perf_counter()
        nonconforming, skipped = fuzz_schema(server.url, args.examples, outcomes)
        uvloop.run(raw_traffic(port, args, outcomes))
        elapsed = time.perf_counter() - started
        health = {
            path: httpx.get(f"{server.url}{path}", timeout=10).status_code
            for path in ("/health", "/v2/health/live", "/v2/health/ready")
        }
        after = reference(server.url)
        metrics = scrape(server.url)
        alive = server.process.poll() is None
        server.terminate()
        tracebacks, errors = log_problems(server.log)
    total = sum(sum(counter.values()) for counter in outcomes.values())
    five_xx = {
        family: sum(n for outcome, n in counter.items() if FIVE_XX.search(outcome))
        for family, counter in outcomes.items()
    }
    print(f"\n#### Outcomes by generator ({total} requests in {elapsed:.0f} s)\n")
    print("| generator | requests | outcomes | 5xx |\n|---|---:|---|---:|")
    for family in sorted(outcomes):
        counter = outcomes[family]
        shown = ", ".join(f"{k}: {v}" for k, v in counter.most_common())
        print(f"| {family} | {sum(counter.values())} | {shown} | {five_xx[family]} |")
    identical = before == after
    rows = [
        ("generated requests", total),
        ("5xx", sum(five_xx.values())),
        ("server log: tracebacks / ERROR lines", f"{tracebacks} / {len(errors)}"),
        ("process alive after", alive),
        ("health after", ", ".join(f"{path} {status}" for path, status in health.items())),
        (
            "queue depth / active requests after",
            f"{metrics.get('inference_queue_depth', -1):.0f}"
            f" / {metrics.get('inference_active_requests', -1):.0f}",
        ),
        ("fixed text's embedding: /embed bytes and float32 bytes identical", identical),
        (
            "schemathesis positive answers off the schema",
            ", ".join(f"{k}: {v}" for k, v in nonconforming.items()) or "none",
        ),
        ("schemathesis could not generate", ", ".join(skipped) or "-"),
    ]
    print(table("Hostile traffic", rows))
    met = (
        total >= 10_000
        and not sum(five_xx.values())
        and not tracebacks
        and alive
        and set(health.values()) == {200}
        and identical
    )
    print(
        f"\n| target | result |\n|---|---|\n| >= 10,000 hostile requests, 0 5xx, 0 tracebacks, "
        f"healthy and bit-for-bit after | {verdict(met)} |"
    )
    for line in errors[:10]:
        print(f"server log: {line}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
