"""Peer comparison (issue 30): bert-serve against the servers users would pick instead.

    scripts/peer_bench/setup_peers.sh /tmp/bert-serve-peers        # once: venv, models (~5 min)
    ./pants export --resolve=python-default                          # bert-serve's dependencies
    /tmp/bert-serve-peers/venv/bin/python scripts/peer_bench/peer_bench.py \
        --work /tmp/bert-serve-peers \
        --bert-serve-python dist/export/python/virtualenvs/python-default/3.11.7/bin/python

Developer-side (PyTorch and the peers live in their own venv, never in the project's resolves);
needs wrk (`apt-get install -y wrk`). One server at a time on loopback, each at its defaults:
bert-serve (`python -m bert_api.serve`, this checkout's code, fp32), infinity-emb `--engine optimum`
(ONNX Runtime) and `--engine torch`, FastAPI + sentence-transformers (fastapi_st_server.py), and
fastembed in-process as the floor. Models: all-MiniLM-L6-v2, then a bert-base-sized model with
random weights (its rows show where the model's own cost takes over).

Before any number, every server's embeddings of the same texts (one request of 32, then 16 single
texts, sent with X-Request-Timeout: 600 so that bert-serve's admission does not refuse them on a
slow host) must match sentence-transformers' (cosine >= 0.999 on every text); a server that answers
wrong gets no numbers. infinity-emb 0.0.78's ONNX engine pools with `mean_pooling` only when
`--pooling-method mean` is given; its default (`auto`) takes the first token (`cls_token_pooling`,
infinity_emb/transformer/embedder/optimum.py), which is wrong for all-MiniLM-L6-v2; so it is given
`--pooling-method mean` (`--infinity-pooling auto` shows the refusal).

Then for each shape of issue 30's table (1 text per request at 1, 8 and 32 connections; 32 texts per
request at 4 connections): a warm-up, then a measured wrk run (client.py says why wrk), repeated for
`--rounds` rounds; the cells are medians of the rounds. Reported: texts/s, p50/p99 latency per
request, and the server's CPU time per text from /proc (servers.py), the stable figure on a noisy
host. Only 2xx answers count as served texts; refusals (bert-serve answers 429 to work it expects
to wait longer than MAX_QUEUE_WAIT_MS, 5 s by default) are counted and noted, and `--budget` sends
every request a longer X-Request-Timeout. Each run's bodies, server logs, results.json and
report.md land in WORK/runs/<time>/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
from client import Vectors, embed, min_cosine, reference, run_wrk, wrk_version
from report import SHAPES, Measurement, Row, Shape, host_lines, render
from servers import (
    MODEL,
    REPO,
    SERVER_KEYS,
    Running,
    ServerSpec,
    cpu_seconds,
    spec_for,
    start,
    stop,
    wait_idle,
    wait_ready,
)
from workload import make_texts, token_stats, write_bodies

SERVERS = (*SERVER_KEYS, "fastembed")
MODELS = {"minilm": "all-MiniLM-L6-v2", "bert-base": "bert-base-sized (random weights)"}
CHECK_BATCH, CHECK_SINGLE, MIN_COSINE = 32, 16, 0.999
FEW_REQUESTS, STRETCH = 20, 6


@dataclass(frozen=True)
class Context:
    """What every server of one model is measured with."""

    run: Path  # this run's directory
    texts: Path  # every text, as JSON
    bodies: dict[int, Path]  # texts per request -> request bodies
    shapes: tuple[Shape, ...]
    check: list[str]  # the correctness check's texts
    expected: Vectors  # sentence-transformers' embeddings of them


def _absolute(path: str) -> Path:
    return Path(path).absolute()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # absolute(), not resolve(): a venv's python is a symlink that must stay the venv's.
    parser.add_argument("--work", type=_absolute, default=Path("/tmp/bert-serve-peers"))
    parser.add_argument(
        "--bert-serve-python",
        type=_absolute,
        help="a Python with bert-serve's dependencies, e.g. the venv that "
        "`./pants export --resolve=python-default` writes under dist/export",
    )
    parser.add_argument("--servers", default=",".join(SERVERS), help="for all-MiniLM-L6-v2")
    parser.add_argument(
        "--bert-base-servers", default="bert-serve,infinity-optimum", help="empty: none"
    )
    parser.add_argument("--shapes", default="all", help="e.g. '1x1,32x4' (texts x connections)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20, help="per measured run")
    parser.add_argument("--warmup", type=float, default=3, help="seconds before each run")
    parser.add_argument(
        "--budget",
        type=float,
        help="send X-Request-Timeout: BUDGET (seconds) with every request; bert-serve then "
        "admits work expected to start within it (default: not sent, its MAX_QUEUE_WAIT_MS)",
    )
    parser.add_argument("--texts", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=30)
    parser.add_argument("--ready-timeout", type=float, default=900)
    parser.add_argument(
        "--infinity-pooling",
        choices=("mean", "auto", "cls"),
        default="mean",
        help="infinity's --pooling-method; auto or cls show the correctness check refusing it",
    )
    parser.add_argument(
        "--bert-serve-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra settings for bert-serve, e.g. MAX_QUEUE_DELAY_MS=0 (repeatable)",
    )
    return parser.parse_args()


def pick_shapes(spec: str) -> tuple[Shape, ...]:
    """The shapes `spec` names: "all", or TEXTSxCONNECTIONS, comma-separated; exits on others."""
    if spec == "all":
        return SHAPES
    known = {f"{s.texts_per_request}x{s.connections}": s for s in SHAPES}
    unknown = [part for part in spec.split(",") if part.strip() not in known]
    if unknown:
        raise SystemExit(
            f"--shapes: no shape {', '.join(unknown)} (texts x connections); "
            f"the shapes are {', '.join(known)}"
        )
    wanted = {part.strip() for part in spec.split(",")}
    return tuple(shape for name, shape in known.items() if name in wanted)


def check(url: str, texts: list[str], expected: Vectors) -> float:
    """The worst cosine over one request of 32 texts and 16 single-text requests."""
    found = [embed(url, texts[:CHECK_BATCH], MODEL)]
    found += [embed(url, text, MODEL) for text in texts[CHECK_BATCH:]]
    return min_cosine(np.concatenate(found), expected)


def measure(server: Running, shape: Shape, bodies: Path, args: argparse.Namespace) -> Measurement:
    """A warm-up, then a measured run; the server's CPU time over the measured run.

    The warm-up is repeated, twice as long each time, until every connection has had an answer;
    the measured run then lasts `--seconds`, or longer where that would answer fewer than
    FEW_REQUESTS requests at the warm-up's median latency (at most STRETCH times `--seconds`).
    Failed requests and runs still too short are noted in the server's row.
    """
    url = server.spec.base_url + "/v1/embeddings"
    wait_idle(server)
    warmup = args.warmup
    while True:
        warm = run_wrk(url, bodies, shape.connections, warmup, args.budget)
        if warm.requests >= shape.connections or warmup >= args.seconds * STRETCH:
            break
        warmup *= 2
    wanted = FEW_REQUESTS * warm.p50_ms / 1e3 / shape.connections if warm.requests else math.inf
    seconds = min(max(args.seconds, wanted), args.seconds * STRETCH)
    before = cpu_seconds(server)
    result = run_wrk(url, bodies, shape.connections, seconds, args.budget)
    spent = cpu_seconds(server) - before
    # wrk counts answered requests, refusals (non-2xx) among them: those served no texts.
    served = result.requests - result.status_errors
    texts = served * shape.texts_per_request
    notes = server.notes
    if result.errors:
        problem = f"{result.status_errors} non-2xx, {result.timeouts} timeouts"
        problem += f", {result.socket_errors} socket errors (latencies include refusals)"
        notes.append(f"{shape.label}: {problem}")
    if served < FEW_REQUESTS:
        notes.append(f"{shape.label}: {served} requests served in {result.seconds:.0f} s")
    if texts <= 0:
        return Measurement(0.0, math.inf, math.inf, math.inf, result.errors)
    return Measurement(
        texts / result.seconds, result.p50_ms, result.p99_ms, spent / texts * 1e6, result.errors
    )


def serve_and_measure(spec: ServerSpec, row: Row, ctx: Context, args: argparse.Namespace) -> None:
    server = start(spec, ctx.run / "logs", row.notes)
    try:
        ready = wait_ready(server, args.ready_timeout)
        row.notes.append(f"ready in {ready:.0f} s, log {server.log}")
        cosine = check(server.spec.base_url + "/v1/embeddings", ctx.check, ctx.expected)
        print(f"  {row.model} {spec.key}: ready in {ready:.0f} s, min cosine {cosine:.6f}")
        if cosine < MIN_COSINE:
            row.wrong = f"min cosine {cosine:.4f} vs sentence-transformers"
            return
        for round_ in range(args.rounds):
            for shape in ctx.shapes:
                found = measure(server, shape, ctx.bodies[shape.texts_per_request], args)
                row.rounds.setdefault(shape.label, []).append(found)
                print(f"  round {round_ + 1} {shape.label}: {found}")
    finally:
        stop(server)


def fastembed_floor(model_dir: Path, row: Row, ctx: Context, args: argparse.Namespace) -> None:
    """fastembed in-process, in the peers' Python: single texts and 32 per call, back to back."""
    here = Path(__file__).resolve().parent
    argv = [sys.executable, str(here / "fastembed_floor.py"), str(model_dir), str(ctx.texts)]
    argv += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    argv += ["--check", str(CHECK_BATCH + CHECK_SINGLE)]
    for round_ in range(args.rounds):
        env = os.environ | {"HF_HUB_OFFLINE": "1"}
        run = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if run.returncode != 0:
            row.wrong = f"fastembed failed: {run.stderr.strip().splitlines()[-1:]}"
            return
        found = json.loads(run.stdout.strip().splitlines()[-1])
        cosine = min_cosine(np.asarray(found["embeddings"], np.float64), ctx.expected)
        if cosine < MIN_COSINE:
            row.wrong = f"min cosine {cosine:.4f} vs sentence-transformers"
            return
        for label, key in (("1 text, 1 conn", "single"), ("32 texts, 4 conns", "batch32")):
            m = found[key]
            value = Measurement(m["texts_per_s"], m["p50_ms"], m["p99_ms"], m["cpu_us_per_text"])
            row.rounds.setdefault(label, []).append(value)
        print(f"  round {round_ + 1} fastembed: {found['single']} {found['batch32']}")
    row.notes.append("in-process, one caller; the 32-texts column is 32 texts per call")


def header(args: argparse.Namespace, stats: str, shapes: tuple[Shape, ...]) -> list[str]:
    """The run's conditions; made before the first server starts (the load average then)."""
    describe = ["git", "-C", str(REPO), "describe", "--always", "--dirty"]
    head = subprocess.run(describe, capture_output=True, text=True, check=False).stdout.strip()
    names = ("infinity-emb", "sentence-transformers", "transformers", "torch", "optimum")
    peers = ", ".join(f"{name} {version(name)}" for name in (*names, "onnxruntime", "fastembed"))
    return [
        f"### Peer comparison, {time.strftime('%Y-%m-%d %H:%M %Z')}",
        "",
        *host_lines(),
        f"- bert-serve: this checkout at {head}; peers: {peers}; client: {wrk_version()}",
        f"- texts: {stats}; same texts and client for every server",
        f"- {args.rounds} round(s) per shape, cells are medians of the rounds; each a warm-up"
        f" (>= {args.warmup:g} s) and a measured run of >= {args.seconds:g} s, longer (<="
        f" {STRETCH}x) where needed for {FEW_REQUESTS} requests",
        "- shapes: " + "; ".join(s.label for s in shapes),
        "- X-Request-Timeout: " + ("not sent" if args.budget is None else f"{args.budget:g} s"),
    ]


def main() -> int:
    args = parse_args()
    shapes = pick_shapes(args.shapes)
    run = args.work / "runs" / time.strftime("%Y%m%d-%H%M%S")
    run.mkdir(parents=True)
    tokenizer = args.work / "models" / "minilm" / "tokenizer.json"
    texts = make_texts(tokenizer, args.texts, args.seed)
    (run / "texts.json").write_text(json.dumps(texts))
    bodies = {n: write_bodies(texts, n, MODEL, run / f"bodies-{n}.jsonl") for n in (1, 32)}
    stats = str(token_stats(tokenizer, texts))
    print(f"texts: {stats}; run directory {run}")
    lines = header(args, stats, shapes)
    # Every name checked before anything runs (an empty list skips that model).
    plan = {
        "minilm": [key for key in args.servers.split(",") if key],
        "bert-base": [key for key in args.bert_base_servers.split(",") if key],
    }
    unknown = {key for wanted in plan.values() for key in wanted} - set(SERVERS)
    if unknown:
        raise SystemExit(f"unknown server(s) {sorted(unknown)}; known: {', '.join(SERVERS)}")
    rows: list[Row] = []
    for model_key, wanted in plan.items():
        if not wanted:
            continue
        model = args.work / "models" / model_key
        check_texts = texts[: CHECK_BATCH + CHECK_SINGLE]
        expected = reference(model, check_texts)
        ctx = Context(run, run / "texts.json", bodies, shapes, check_texts, expected)
        for key in wanted:
            row = Row(MODELS[model_key], key, "")
            rows.append(row)
            if key == "fastembed":
                row.label = "fastembed in-process, no server (the floor)"
                fastembed_floor(model.with_name(model.name + "-onnx"), row, ctx, args)
                continue
            extra = dict(item.split("=", 1) for item in args.bert_serve_env)
            spec = spec_for(
                key, model, args.work, args.infinity_pooling, args.bert_serve_python, extra
            )
            row.label = spec.label
            try:
                serve_and_measure(spec, row, ctx, args)
            except RuntimeError as error:
                row.wrong = f"failed: {str(error).splitlines()[0]}"
                print(f"  {key}: {error}")
    report = render(lines, rows, shapes)
    (run / "report.md").write_text(report)
    (run / "results.json").write_text(json.dumps([asdict(row) for row in rows], indent=1))
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
