"""What a batch shape costs the first time an Engine meets it, against the second time.

On CUDA a first run at a shape makes ONNX Runtime choose its kernels for it; this measured 73-80 ms
of host time a run on an H200 (onnxruntime-gpu 1.31.1) against 1.2-1.4 ms once met, which is why
CUDA batches' rows are padded up to a few counts (serving/row_buckets.py). The Engine here runs
with that padding off after its warm-up, so the rows below meet shapes as they come; its warm-up
has run the row buckets' shapes, so on CUDA the rows rounded up to a multiple of 32 are met there
(before the row buckets existed their first time also cost ~75 ms, for the counts not yet met).
Rows (tiny-bert, so the model's own work is near nothing): one shape repeated; 60 row counts at
one length, first time and again; 80 random (rows, length) shapes, first time and again; the same
rows padded to the budget's largest batch; the same rows rounded up to a multiple of 32, first
time and again.

    python3 -m bert_runtime.bench.first_run_cost cuda    # on the GPU machine (gpukit's env)
    python3 -m bert_runtime.bench.first_run_cost cpu     # a dry run
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bert_runtime.config import Device, EngineConfig
from bert_runtime.loading import prepared_dir
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.tasks import EmbedRequest
from bert_runtime.testutil.models import TINY_BERT


def _timed(engine: Engine, ids: np.ndarray, shapes: list[tuple[int, int]], label: str) -> str:
    walls, cpus = [], []
    for rows, length in shapes:
        sequences = [ids[:length]] * rows
        wall, cpu = time.perf_counter(), time.process_time()
        engine.run(sequences, [EmbedRequest()] * rows)
        walls.append(1e3 * (time.perf_counter() - wall))
        cpus.append(1e3 * (time.process_time() - cpu))
    return (
        f"| {label} | {len(shapes)} | {statistics.median(walls):.3f} | {max(walls):.3f} "
        f"| {statistics.median(cpus):.3f} |"
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    device = Device(args[0]) if args else Device.CUDA
    cache = Path(tempfile.mkdtemp(prefix="first-run-cost-"))
    model = prepared_dir(TINY_BERT, cache_dir=cache, device=device)
    runner_config = EngineConfig(device=device, max_sequence_length=64)
    engine = Engine(model, runner_config)
    engine._runner.bucket_rows = False  # every row count reaches the session as it is
    ids = engine.tokenizer.encode(["the quick brown fox jumps over the lazy dog " * 8])[0]
    rows_at_32 = [(rows, 32) for rows in range(100, 160)]
    rng = np.random.default_rng(0)
    lengths = rng.choice([16, 24, 32, 40, 48], 80)
    mixed = [(int(r), int(n)) for r, n in zip(rng.integers(60, 256, 80), lengths, strict=True)]
    by_32 = [(-(-rows // 32) * 32, length) for rows, length in mixed]
    print(f"\n## First run at a shape ({device.value}, tiny-bert)\n")
    print("| shapes | runs | wall ms (median) | wall ms (max) | CPU ms (median) |")
    print("|---|---:|---:|---:|---:|")
    rows = [
        ([(128, 32)] * 30, "one shape, 128 x 32, 30 times"),
        (rows_at_32, "rows 100-159 at 32 tokens, first time each"),
        (rows_at_32, "the same shapes again"),
        (mixed, "80 random shapes, rows 60-255 x 16-48 tokens, first time"),
        (mixed, "the same again"),
        ([(256, length) for _, length in mixed], "their rows padded to 256 (warm-up's shapes)"),
        (by_32, "their rows rounded up to a multiple of 32, first time"),
        (by_32, "the same again"),
    ]
    for shapes, label in rows:
        print(_timed(engine, ids, shapes, label), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
