"""Where a prepared model spends its time, by operator type (ONNX Runtime's own profiler).

Runs one prepared model at a fixed shape with `enable_profiling` and prints each operator type's
share of kernel time: the evidence for "GEMM-bound" in docs/BENCHMARKS.md.

    python op_profile.pex --model /tmp/bench-work/fp32 --seq 128 --batch 32
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bert_runtime.config import EngineConfig
from bert_runtime.manifest import MODEL_NAME, read_manifest
from bert_runtime.serving.session import create_session, session_options

from .workload import full_length_inputs


def op_shares(model: Path, seq: int, batch: int, threads: int, runs: int) -> dict[str, float]:
    """Fraction of kernel time per operator type over `runs` runs after a warm-up."""
    with tempfile.TemporaryDirectory() as scratch:
        config = EngineConfig(intra_op_threads=threads)
        options = session_options(config)
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(scratch) / "profile")
        session = create_session(model, config, options)
        vocab = read_manifest(model.parent).vocab_size  # a tiny test model's is small
        ids = np.random.default_rng(0).integers(
            min(100, vocab // 2), vocab, (batch, seq), dtype=np.int32
        )
        feeds = full_length_inputs(ids)
        for _ in range(runs + 1):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    per_op: collections.Counter[str] = collections.Counter()
    for event in events:
        # An If's time holds its branch's nodes, which have events of their own.
        if (
            event.get("cat") == "Node"
            and event["name"].endswith("_kernel_time")
            and event["args"]["op_name"] != "If"
        ):
            per_op[event["args"]["op_name"]] += event["dur"]
    total = sum(per_op.values())
    return {op: duration / total for op, duration in per_op.most_common()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a prepared model directory")
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args(argv)
    shares = op_shares(args.model / MODEL_NAME, args.seq, args.batch, args.threads, args.runs)
    print(f"\n## Kernel time by operator type (seq {args.seq}, batch {args.batch})\n")
    print("| operator | share |\n|---|---:|")
    for op, share in shares.items():
        if share >= 0.001:
            print(f"| {op} | {100 * share:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
