"""Front-end worker scaling (issue 30): throughput with 1, 4 and 8 workers on a many-core host.

One engine process keeps the model and its one batch queue (on the GPU with `--device cuda`); the
front-end workers decode, tokenize and encode. This measures whether adding workers adds
throughput: for each worker count a fresh server (the tiny model, so the front end is what is
measured), each shape driven by wrk with several threads from the same machine, and the CPU time of
the engine process and of the workers read from /proc. The engine's share of one core shows when
it, not the workers, becomes the limit. The last table gives each count's speed-up over one worker
and its efficiency (speed-up / workers; issue 30's target is >= 0.7).

    python3 -m bert_api.bench.worker_scaling --device cuda --workers 1 4 8 --out OUT   # the H200
    python3 -m bert_api.bench.worker_scaling --workers 1 2 --seconds 5                # a dry run
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bert_api.bench.host_path_bench import print_table, run_shape
from bert_api.testing import run_server
from bert_runtime.testutil.models import TINY_BERT

# (row, route, texts per request, connections): enough connections to keep 8 workers busy.
SHAPES = [
    ("POST /tokenize, 1 text, 256 conns (front end only)", "/tokenize", 1, 256),
    ("POST /embed, 1 text, 256 conns", "/embed", 1, 256),
    ("POST /embed, 32 texts, 32 conns", "/embed", 32, 32),
]


def measure(
    model: Path,
    device: str,
    workers: int,
    seconds: float,
    threads: int,
    workdir: Path,
    shapes: list[tuple[str, str, int, int]],
    passed: dict[str, str],
) -> list[dict[str, float | str]]:
    """Every shape against one fresh server with `workers` front ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        "MODEL_NAME": str(model),
        "WORKERS": str(workers),
        "LOG_LEVEL": "WARNING",
        "ONNX_EXECUTION_PROVIDER": device.upper(),
        **passed,
    }
    results: list[dict[str, float | str]] = []
    with run_server(env, workdir, wait=False) as server:
        server.wait_ready(timeout=180)  # CUDA's warm-up meets every row bucket at every length
        for name, route, per_request, connections in shapes:
            run = run_shape(
                server, route, per_request, connections, seconds, workdir, threads=threads
            )
            served = (run.wrk["requests"] - run.wrk["errors"]) * per_request  # answered only
            results.append(
                {
                    "shape": name,
                    "workers": workers,
                    "texts_per_s": served / run.wall_s,
                    "p50_ms": run.wrk["p50_ms"],
                    "p99_ms": run.wrk["p99_ms"],
                    "engine_cores": run.engine_cpu_s / run.wall_s,
                    "worker_cores": run.workers_cpu_s / run.wall_s,
                    "us_per_text": 1e6 * (run.engine_cpu_s + run.workers_cpu_s) / max(served, 1),
                    "mean_batch": (run.mean_batch or 0.0) if route == "/embed" else 0.0,
                    "non_2xx": run.wrk["errors"],
                }
            )
        server.terminate()
    return results


def _rows(results: list[dict[str, float | str]]) -> list[list[str]]:
    return [
        [
            str(r["shape"]),
            str(r["workers"]),
            f"{r['texts_per_s']:,.0f}",
            f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f}",
            f"{r['engine_cores']:.2f}",
            f"{r['worker_cores']:.2f}",
            f"{r['us_per_text']:.0f}",
            f"{r['mean_batch']:.1f}" if r["mean_batch"] else "-",
            f"{r['non_2xx']:.0f}",
        ]
        for r in results
    ]


def scaling_rows(results: list[dict[str, float | str]]) -> list[list[str]]:
    """Per shape and worker count: speed-up over the fewest workers measured, and efficiency."""
    rows = []
    for name, *_ in SHAPES:
        mine = [r for r in results if r["shape"] == name]
        if not mine:
            continue
        base = mine[0]
        for r in mine:
            speedup = float(r["texts_per_s"]) / max(float(base["texts_per_s"]), 1e-9)
            ratio = int(r["workers"]) / int(base["workers"])
            rows.append([name, str(r["workers"]), f"{speedup:.2f}x", f"{speedup / ratio:.2f}"])
    return rows


def _host() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "?")
    gpu = "no GPU"
    if shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"]
        gpu = subprocess.run(query, capture_output=True, text=True).stdout.strip() or gpu
    return f"{os.cpu_count()} cores: {cpu}; {gpu}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, default=TINY_BERT)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--wrk-threads", type=int, default=max(1, (os.cpu_count() or 4) // 4))
    parser.add_argument("--out", type=Path, help="also write the tables here (scaling.md)")
    parser.add_argument(
        "--shape", type=int, action="append", choices=range(len(SHAPES)), help="only these rows"
    )
    parser.add_argument(
        "--pass-env", action="append", default=[], help="give the server this variable of ours"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("worker_scaling needs wrk (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="worker-scaling-"))
    shapes = [SHAPES[i] for i in args.shape] if args.shape else SHAPES
    passed = {name: os.environ[name] for name in args.pass_env if name in os.environ}
    results: list[dict[str, float | str]] = []
    for workers in args.workers:
        where = workdir / f"w{workers}"
        results += measure(
            args.model, args.device, workers, args.seconds, args.wrk_threads, where, shapes, passed
        )
        print(f"workers={workers} done", flush=True)
    header = [
        "route and shape",
        "workers",
        "texts/s",
        "p50 / p99 ms",
        "engine process (cores)",
        "workers (cores)",
        "server CPU us/text",
        "mean batch",
        "non-2xx",
    ]
    lines: list[str] = []
    title = f"## Worker scaling ({args.model.name} on {args.device}; {_host()})"
    client = f"wrk -t{args.wrk_threads} on the same machine, {args.seconds:.0f}s a row"
    print(f"\n{title}\n\n{client}\n")
    print_table(header, _rows(results), lines)
    print()
    print_table(
        ["route and shape", "workers", "speed-up", "efficiency"], scaling_rows(results), lines
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "scaling.md").write_text(f"{title}\n\n{client}\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
