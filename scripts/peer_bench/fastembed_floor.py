"""fastembed in-process, no server: the floor a server's host path is measured against.

    python fastembed_floor.py MODEL_ONNX_DIR TEXTS_JSON --seconds 20 --warmup 3 --check 48

Runs offline: the model is registered under a name of its own (mean pooling, normalized, as the
sentence-transformers model says) and loaded with `specific_model_path`, which fastembed 0.9 returns
before it looks at the Hub. Two shapes, each called back to back from one thread: one text per
call, and 32 texts per call. Prints one JSON object: per shape texts/s, p50/p99 per call and CPU
per text (this process's CPU time: fastembed has no server), plus the embeddings of the first
`--check` texts for peer_bench's correctness check.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from fastembed import TextEmbedding
from fastembed.common.model_description import ModelSource, PoolingType


def load(model_dir: Path) -> TextEmbedding:
    name = f"peer-bench/{model_dir.name}"
    dim = int(json.loads((model_dir / "config.json").read_text())["hidden_size"])
    TextEmbedding.add_custom_model(
        model=name,
        pooling=PoolingType.MEAN,
        normalization=True,
        sources=ModelSource(hf=name),
        dim=dim,
        model_file="model.onnx",
    )
    return TextEmbedding(name, specific_model_path=str(model_dir))


def measure(
    model: TextEmbedding, texts: list[str], per_call: int, seconds: float
) -> dict[str, float]:
    calls = [texts[i : i + per_call] for i in range(0, len(texts) - per_call + 1, per_call)]
    latencies: list[float] = []
    cpu_before, started = time.process_time(), time.perf_counter()
    while time.perf_counter() - started < seconds:
        for call in calls:
            began = time.perf_counter()
            list(model.embed(call, batch_size=per_call))
            latencies.append(time.perf_counter() - began)
            if time.perf_counter() - started >= seconds:
                break
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_before
    done = len(latencies) * per_call
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "texts_per_s": done / elapsed,
        "p50_ms": cuts[49] * 1e3,
        "p99_ms": cuts[98] * 1e3,
        "cpu_us_per_text": cpu / done * 1e6,
        "texts": done,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("texts", type=Path)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--check", type=int, default=48)
    args = parser.parse_args()
    texts = json.loads(args.texts.read_text())
    model = load(args.model_dir)
    found: dict[str, object] = {
        "embeddings": np.asarray(list(model.embed(texts[: args.check]))).tolist()
    }
    for key, per_call in (("single", 1), ("batch32", 32)):
        measure(model, texts, per_call, args.warmup)
        found[key] = measure(model, texts, per_call, args.seconds)
    print(json.dumps(found))


if __name__ == "__main__":
    main()
