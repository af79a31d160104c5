"""Host path benchmark: what the service costs per request and per text, model aside.

With a model whose run costs next to nothing the service's own work is what remains: HTTP, JSON,
tokenization, batching, thread and process hops, pooling and the answer. Two tables:

1. Stages, in this process: each piece of the request path timed on its own (per text).
2. End to end: a real server (WORKERS=1 and 2, or --workers) driven by wrk on the same machine,
   for the shapes of issue 30; throughput, latency and the server's CPU time per text, read from
   /proc for the server and its workers (the stable figure on a noisy host). The model's share of
   it is estimated from the server's own mean batch size (its /metrics) and the model's CPU per
   text at that size measured here; the rest is the host path: what the service costs around the
   model. The tiny test model (the default) is not free: its ONNX Runtime run costs 90-190 us a
   text on a 2-core host; --encoder-layers 0 (below) is.

Pass --model to run the same table against another model (e.g. a bert-base-sized one, to see the
model's share), and --encoder-layers 0 to serve the checkpoint with no encoder layers: embeddings,
layer norm and pooling only, a run that costs about 10 us a text in a batch, so the server's CPU
is the host path's with no estimate taken off (the tiny model's two layers cost 90-190 us a text
on the 2-core test host, more than the host path itself). Pass --server-src to serve from another
checkout's src/python (a git worktree of an older commit) for a baseline measured side by side, and
--server-env KEY=VALUE (repeatable) to serve with a setting changed (e.g. INTRA_OP_THREADS=2: the
pool without the thread split). wrk is Debian's package (`apt-get install wrk`).

    ./pants package src/python/bert_api/bench:host_path_bench
    python3.11 dist/src.python.bert_api.bench/host_path_bench.pex --seconds 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from bert_api.bench import bare_asgi
from bert_api.bench.host_stages import load_engine, model_us_per_text, stage_table
from bert_api.testing import RunningServer, free_port, run_server
from bert_runtime.files import read_json
from bert_runtime.manifest import MANIFEST_NAME
from bert_runtime.serving.engine import Engine
from bert_runtime.testutil.models import TINY_BERT, with_config

# (row, route, texts per request, connections)
SHAPES = [
    ("GET /health (the framework's floor)", "/health", 0, 32),
    ("POST /tokenize, 1 text, 32 conns", "/tokenize", 1, 32),
    ("POST /embed, 1 text, 1 conn", "/embed", 1, 1),
    ("POST /embed, 1 text, 32 conns", "/embed", 1, 32),
    ("POST /embed, 32 texts, 8 conns", "/embed", 32, 8),
]
WORDS = "the quick brown fox jumps over lazy dog a cat sat on mat and ran far away home".split()


def texts(count: int, seed: int = 7) -> list[str]:
    """Short texts of 3-30 words (5-40 tokens on the tiny model's vocabulary)."""
    import random

    pick = random.Random(seed)
    return [" ".join(pick.choices(WORDS, k=pick.randint(3, 30))) for _ in range(count)]


def wrk_script(route: str, per_request: int, workdir: Path) -> Path:
    """A wrk script that cycles through 64 request bodies (GET for the health route)."""
    path = workdir / f"{route.strip('/') or 'root'}-{per_request}.lua"
    if not per_request:
        path.write_text('wrk.method = "GET"\n')
        return path
    pool = texts(64 * per_request)
    bodies = [
        json.dumps({"inputs": pool[i * per_request : (i + 1) * per_request]}) for i in range(64)
    ]
    lines = ["local bodies = {"] + [f"  [==[{b}]==]," for b in bodies] + ["}", "local n = 0"]
    lines += [
        "request = function()",
        "  n = n % #bodies + 1",
        '  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[n])',
        "end",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def cpu_split(server: RunningServer) -> tuple[float, float]:
    """CPU seconds so far of the server's own process (the engine) and of its children (workers)."""
    main = psutil.Process(server.process.pid)
    own = sum(main.cpu_times()[:2])
    children = 0.0
    for process in main.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            children += sum(process.cpu_times()[:2])
    return own, children


@dataclass(frozen=True)
class ShapeRun:
    """One shape under wrk: its result, and what the server spent and batched meanwhile."""

    wrk: dict[str, float]
    wall_s: float
    engine_cpu_s: float
    workers_cpu_s: float
    batches: float
    texts: float

    @property
    def mean_batch(self) -> float | None:
        return self.texts / self.batches if self.batches else None


def run_shape(
    server: RunningServer,
    route: str,
    per_request: int,
    connections: int,
    seconds: float,
    workdir: Path,
    *,
    warmup_s: float = 2.0,
    threads: int = 1,
) -> ShapeRun:
    """A warm-up, then `seconds` of wrk on `route`, with the server's counters around the run."""
    script = wrk_script(route, per_request, workdir)
    url = f"{server.url}{route}"
    run_wrk(url, script, connections, warmup_s, threads)
    batches, texts = batch_counts(server)
    engine_cpu, workers_cpu = cpu_split(server)
    started = time.monotonic()
    result = run_wrk(url, script, connections, seconds, threads)
    wall = time.monotonic() - started
    engine_after, workers_after = cpu_split(server)
    batches_after, texts_after = batch_counts(server)
    return ShapeRun(
        result,
        wall,
        engine_after - engine_cpu,
        workers_after - workers_cpu,
        batches_after - batches,
        texts_after - texts,
    )


def run_wrk(
    url: str, script: Path, connections: int, seconds: float, threads: int = 1
) -> dict[str, float]:
    """wrk's throughput and latency percentiles (a JSON line its `done` hook prints)."""
    done = (
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("RESULT %d %d %f %f\\n", summary.requests,'
        " summary.errors.status, latency:percentile(50), latency:percentile(99)))\nend\n"
    )
    full = script.with_suffix(".run.lua")
    full.write_text(script.read_text() + done)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{round(seconds)}s",
        "-s",
        str(full),
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(row for row in output.splitlines() if row.startswith("RESULT"))
    requests, errors, p50, p99 = line.split()[1:]
    return {
        "requests": float(requests),
        "errors": float(errors),
        "p50_ms": float(p50) / 1000,
        "p99_ms": float(p99) / 1000,
    }


def batch_counts(server: RunningServer) -> tuple[float, float]:
    """The server's batches so far: (count, texts in them), from its /metrics."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    found = {"count": 0.0, "sum": 0.0}
    for family in text_string_to_metric_families(text):
        if family.name == "inference_batch_size":
            for sample in family.samples:
                for key in found:
                    if sample.name == f"inference_batch_size_{key}":
                        found[key] += sample.value
    return found["count"], found["sum"]


def end_to_end(
    engine: Engine,
    model: Path,
    workers: int,
    seconds: float,
    workdir: Path,
    server_src: Path | None = None,
    server_env: dict[str, str] | None = None,
) -> list[list[str]]:
    rows = []
    workdir.mkdir(parents=True, exist_ok=True)
    env = {"MODEL_NAME": str(model), "WORKERS": str(workers), "LOG_LEVEL": "WARNING"}
    env.update(server_env or {})
    if server_src is not None:  # its packages first, this one's dependencies after
        env["PYTHONPATH"] = os.pathsep.join([str(server_src.resolve()), *sys.path])
    with run_server(env, workdir) as server:
        for name, route, per_request, connections in SHAPES:
            run = run_shape(
                server,
                route,
                per_request,
                connections,
                seconds,
                workdir,
                warmup_s=min(2.0, seconds),
            )
            result = run.wrk
            units = result["requests"] * max(per_request, 1)
            per_text = 1e6 * (run.engine_cpu_s + run.workers_cpu_s) / units
            model_cells = ["-", "-", "-"]
            mean = run.mean_batch
            if route == "/embed" and mean is not None:
                model_us = model_us_per_text(engine, texts(512), max(1, round(mean)))
                model_cells = [f"{mean:.1f}", f"{model_us:.0f}", f"{per_text - model_us:.0f}"]
            rows.append(
                [
                    name,
                    str(workers),
                    f"{units / seconds:,.0f}",
                    f"{result['p50_ms']:.1f} / {result['p99_ms']:.1f}",
                    f"{per_text:.0f}",
                    *model_cells,
                    f"{result['errors']:.0f}",
                ]
            )
        server.terminate()
    return rows


def bare_uvicorn_row(seconds: float, workdir: Path) -> list[str]:
    """GET against bare_asgi.app under uvicorn (httptools, uvloop): the HTTP server's floor."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "uvicorn", f"{bare_asgi.__name__}:app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--http", "httptools"]
    command += ["--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, cwd=workdir)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(100):
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the bare ASGI app under uvicorn did not start")
        script = wrk_script("/", 0, workdir)
        run_wrk(url, script, 32, min(2.0, seconds))  # warm-up
        server = psutil.Process(process.pid)
        before = sum(server.cpu_times()[:2])
        result = run_wrk(url, script, 32, seconds)
        cpu = sum(server.cpu_times()[:2]) - before
    finally:
        process.terminate()
        process.wait(timeout=10)
    served = result["requests"]
    return [
        "GET, bare ASGI app under the same uvicorn (the HTTP server's floor)",
        "1",
        f"{served / seconds:,.0f}",
        f"{result['p50_ms']:.1f} / {result['p99_ms']:.1f}",
        f"{1e6 * cpu / served:.0f}",
        "-",
        "-",
        "-",
        f"{result['errors']:.0f}",
    ]


def print_table(header: list[str], rows: list[list[str]], collect: list[str] | None = None) -> None:
    """A markdown table on stdout (and its lines appended to `collect`, when given)."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    print("\n".join(lines))
    if collect is not None:
        collect += [*lines, ""]


def with_encoder_layers(checkpoint: Path, layers: int, workdir: Path) -> Path:
    """A copy of `checkpoint` under `workdir` that keeps only its first `layers` encoder layers."""
    if (checkpoint / MANIFEST_NAME).is_file():
        raise ValueError(f"{checkpoint} is a prepared model: --encoder-layers needs a checkpoint")
    if layers < 0:
        raise ValueError(f"--encoder-layers must be 0 or more, got {layers}")
    config = read_json(checkpoint / "config.json")
    # DistilBERT names its layer count n_layers; the other families num_hidden_layers.
    key = next((k for k in ("num_hidden_layers", "n_layers") if k in config), None)
    if key is None:
        raise ValueError(f"{checkpoint}/config.json gives no layer count to change")
    return with_config(workdir, checkpoint, **{key: layers})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, default=TINY_BERT)
    parser.add_argument(
        "--encoder-layers",
        type=int,
        metavar="N",
        help="serve --model's checkpoint with its first N encoder layers (0: no model time)",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--server-src", type=Path, help="serve from this src/python instead")
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="KEY=VALUE", help="a server setting"
    )
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.server_env):
        parser.error("--server-env takes KEY=VALUE")
    server_env = dict(item.split("=", 1) for item in args.server_env)
    if shutil.which("wrk") is None:
        print("host_path_bench needs wrk (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="host-path-"))
    model: Path = args.model
    if args.encoder_layers is not None:
        model = with_encoder_layers(model, args.encoder_layers, workdir)
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "?")
    name = args.model.name
    if args.encoder_layers is not None:
        name += f", {args.encoder_layers} encoder layers"
    print(f"\n## Host path ({name}; {os.cpu_count()} cores: {cpu}; client here too)\n")
    threads = server_env.get("INTRA_OP_THREADS")
    engine = load_engine(model, int(threads) if threads and threads != "0" else None)
    print("### Stages, in process (CPU us per text)\n")
    print_table(*stage_table(engine, texts))
    served = args.server_src or "this build"
    settings = ", ".join(args.server_env) or "defaults"
    print(
        f"\n### End to end, wrk, {args.seconds:.0f}s per row; server code: {served}; {settings}\n"
    )
    rows = [bare_uvicorn_row(args.seconds, workdir)]
    for workers in args.workers:
        rows += end_to_end(
            engine,
            model,
            workers,
            args.seconds,
            workdir / f"w{workers}",
            args.server_src,
            server_env,
        )
    header = [
        "route and shape",
        "workers",
        "texts/s",
        "p50 / p99 ms",
        "server CPU us/text",
        "mean batch",
        "model us/text (est.)",
        "host path us/text",
        "non-2xx",
    ]
    print_table(header, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
