"""The request path's stages timed one by one, in this process, per text (host_path_bench).

Times are CPU time of this process (every thread: ONNX Runtime's and the tokenizer's too), the
figure the end-to-end table reads from the server, so the two can be set side by side.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import msgspec
import numpy as np

from bert_api.task_schemas import EmbedBody, EmbedResponse, Usage
from bert_runtime.config import BatcherConfig, EngineConfig
from bert_runtime.manifest import MANIFEST_NAME
from bert_runtime.serving.batcher import Batcher
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.planner import BatchPlanner
from bert_runtime.serving.task_inputs import EmbedOptions
from bert_runtime.serving.tasks import AnyResult, Embedding, EmbedRequest, TaskRequest

R = TypeVar("R", bound=AnyResult)
EMBED = EmbedRequest()


def _per_call_us(work: Callable[[], object], seconds: float = 1.0) -> float:
    """CPU microseconds per call of `work`, over about `seconds` of wall time."""
    for _ in range(20):
        work()
    calls, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        work()
        calls += 1
    return 1e6 * (time.process_time() - cpu) / calls


class _NullRunner:
    """Answers at once with a ready vector: what the batcher costs without a model."""

    def __init__(self, planner: BatchPlanner, width: int) -> None:
        self.planner = planner
        self._vector = np.zeros(width, np.float32)

    def run(self, sequences: Sequence[np.ndarray], requests: Sequence[TaskRequest[R]]) -> list[R]:
        return [Embedding(self._vector, len(s)) for s in sequences]  # type: ignore[misc]


def _queue_us_per_text(engine: Engine, sequences: list[np.ndarray], per_request: int) -> float:
    """Concurrent submissions through a real Batcher over the null runner."""
    runner = _NullRunner(engine.planner, engine.manifest.embedding_size)
    chunks = [sequences[i : i + per_request] for i in range(0, len(sequences), per_request)]

    async def drive() -> float:
        async with Batcher(runner, BatcherConfig(max_queue_delay_ms=0)) as batcher:
            started = time.process_time()
            for _ in range(5):
                await asyncio.gather(*(batcher.submit_many(c, [EMBED] * len(c)) for c in chunks))
            return 1e6 * (time.process_time() - started) / (5 * len(sequences))

    return asyncio.run(drive())


def _stages(engine: Engine, batch: list[str], many: list[str]) -> dict[str, float]:
    """Microseconds per request of `batch`'s texts, stage by stage."""
    per_request = len(batch)
    body = msgspec.json.encode({"inputs": batch})
    sequences = engine.inputs.embed(batch, EmbedOptions()).sequences
    vectors = engine.embed(batch)
    pool = engine.inputs.embed(many, EmbedOptions()).sequences
    full = (sequences * 32)[:32]
    answer = EmbedResponse("bert", vectors.tolist(), vectors.shape[1], Usage(10))
    return {
        "decode the JSON body": _per_call_us(lambda: msgspec.json.decode(body, type=EmbedBody)),
        "tokenize, prompt, check": _per_call_us(lambda: engine.inputs.embed(batch, EmbedOptions())),
        "queue and batch (no model)": _queue_us_per_text(engine, pool, per_request) * per_request,
        "model run (in batches of 32)": _per_call_us(lambda: engine.run(full, [EMBED] * 32))
        / 32
        * per_request,
        "answer to JSON": _per_call_us(
            lambda: msgspec.json.encode(
                EmbedResponse("bert", vectors.tolist(), vectors.shape[1], answer.usage)
            )
        ),
    }


def load_engine(model: Path, intra_op_threads: int | None = None) -> Engine:
    """
    The engine the server would run for `model` (prepared here first if it is a checkpoint),
    with the server's INTRA_OP_THREADS (None: unset).
    """
    if not (model / MANIFEST_NAME).is_file():
        from bert_runtime.loading import prepared_dir

        model = prepared_dir(model, cache_dir=Path(tempfile.gettempdir()) / "host-path-bench")
    return Engine(model, EngineConfig(max_sequence_length=128, intra_op_threads=intra_op_threads))


def model_us_per_text(engine: Engine, texts: list[str], rows: int) -> float:
    """CPU per text of the model run alone, in batches of `rows` of `texts`' lengths."""
    sequences = engine.inputs.embed(texts, EmbedOptions()).sequences
    batches = itertools.cycle(
        [sequences[i : i + rows] for i in range(0, len(sequences) - rows + 1, rows)]
    )

    def run_one() -> None:
        batch = next(batches)
        engine.run(batch, [EMBED] * len(batch))

    return _per_call_us(run_one) / rows


def stage_table(
    engine: Engine, make_texts: Callable[[int], list[str]]
) -> tuple[list[str], list[list[str]]]:
    """Rows of CPU microseconds per text for each stage, for 1-text and 32-text requests."""
    columns = {n: _stages(engine, make_texts(n), make_texts(512)) for n in (1, 32)}
    rows = [
        [stage, f"{columns[1][stage]:.1f}", f"{columns[32][stage] / 32:.1f}"]
        for stage in columns[1]
    ]
    totals = [sum(columns[n].values()) / n for n in (1, 32)]
    rows.append(["sum of the stages", f"{totals[0]:.1f}", f"{totals[1]:.1f}"])
    return ["stage", "1 text / request (us)", "32 texts / request (us per text)"], rows
