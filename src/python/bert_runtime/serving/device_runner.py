"""How a batch's feeds reach the session on each device, for the Engine.

CPU: a plain run, on the one-thread session where a small model's batch is small enough
(thread_split.py); warm-up also times what one more run costs (run_overhead.py). CUDA: IO
binding (inputs copied once, only the outputs a task needs copied back); with CUDA graphs on, a
batch that fits a bucket replays that bucket's graph (cuda_graphs.GraphRunner), and every other
run (fill-mask's variable mask rows, a batch no bucket holds) says `gpu_graph_id=-1` so ONNX
Runtime neither captures nor replays it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bert_runtime.config import Device, EngineConfig
from bert_runtime.errors import ConfigError
from bert_runtime.serving import run_overhead
from bert_runtime.serving.cuda_graphs import (
    NO_GRAPH,
    GraphBuckets,
    GraphRunner,
    graph_buckets,
    run_options,
)
from bert_runtime.serving.planner import Batch, BatchPlanner
from bert_runtime.serving.row_buckets import bucket_rows, is_row_batch, padded_rows
from bert_runtime.serving.session import run_bound
from bert_runtime.serving.thread_split import ThreadSplit, measure_split
from bert_runtime.serving.thread_split import sizes as split_sizes

logger = logging.getLogger(__name__)


class DeviceRunner:
    """
    Runs feeds on `session` as `config` asks; `on_cuda` is where the session really runs. With
    CUDA graphs, `buckets` hold every batch the `planner` makes of texts up to `max_length`.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        config: EngineConfig,
        on_cuda: bool,
        planner: BatchPlanner,
        max_length: int,
        *,
        bucket_rows: bool | None = None,
    ) -> None:
        self.session = session
        self.config = config
        self.max_length = max_length
        self.on_cuda = on_cuda
        # Where warm-up times the CPU-only choices (the thread split, a run's fixed cost).
        self.on_cpu = not on_cuda and config.device is Device.CPU
        self.input_names = {i.name for i in session.get_inputs()}
        self.bound = on_cuda and config.io_binding
        graphs = on_cuda and config.cuda.graphs
        self.planner = planner
        # Rows padded up to a few counts (row_buckets.py): on CUDA without graphs by default.
        self.bucket_rows = (on_cuda and not graphs) if bucket_rows is None else bucket_rows
        self.buckets: GraphBuckets | None = None
        self.graphs: GraphRunner | None = None
        if graphs:
            budget = planner.budget
            longest = planner.padded_length(max_length)
            self.buckets = graph_buckets(budget.max_rows, budget.max_tokens, longest)
            self.graphs = GraphRunner(
                session, self.buckets, planner.pad_id, "cuda", config.device_id
            )
        self._no_graph = run_options(NO_GRAPH) if graphs else None
        # On CPU, set at warm-up where it pays (measure_split).
        self.split: ThreadSplit | None = None

    def feeds(
        self, batch: Batch, mask_positions: np.ndarray | None = None, top_k: int = 1
    ) -> dict[str, np.ndarray]:
        """The session's inputs for `batch` (fill-mask graphs: with its mask positions, top_k)."""
        # Only the inputs the graph takes: ModernBERT's has no token types.
        feeds = {k: v for k, v in batch.model_inputs().items() if k in self.input_names}
        if "mask_positions" in self.input_names:
            feeds["mask_positions"] = (
                mask_positions if mask_positions is not None else np.zeros((0, 2), np.int64)
            )
            feeds["top_k"] = np.array([top_k], np.int64)
        return feeds

    def measure_split(self, model_path: Path) -> None:
        """On CPU: a one-thread session for the small batches, where it pays (thread_split.py)."""
        if not self.on_cpu:
            return
        pad = np.int32(self.planner.pad_id)
        self.split = measure_split(
            self.config,
            self.session,
            model_path,
            lambda rows, length: self.feeds(self.planner.pad([np.full(length, pad)] * rows)),
            split_sizes(self.planner, self.max_length),
        )

    def measure_run_overhead(self, run: Callable[[int, int], None]) -> None:
        """On CPU: what one more run costs, for the planner's fill rule (run_overhead.py)."""
        if not self.on_cpu:
            return
        budget = self.planner.budget
        found = run_overhead.measure(run, budget.max_rows, budget.max_tokens)
        self.planner.budget = replace(budget, run_overhead_tokens=found.tokens)
        logger.info("batch fill: %s", found.describe())

    def session_for(self, feeds: dict[str, np.ndarray]) -> ort.InferenceSession:
        """The one-thread session for a batch the split holds, else the full pool's."""
        split = self.split
        if split is not None and feeds["input_ids"].size <= split.max_tokens:
            return split.session
        return self.session

    def run(
        self, feeds: dict[str, np.ndarray], outputs: Sequence[str], *, graph: bool = True
    ) -> list[np.ndarray]:
        """The outputs for `feeds`; `graph=False` never captures or replays a CUDA graph."""
        if graph and self.graphs is not None and self.graphs.accepts(feeds):
            return self.graphs.run(feeds, outputs)
        if graph and self.bucket_rows and is_row_batch(feeds):
            rows, length = feeds["input_ids"].shape
            bucket = bucket_rows(self.planner, rows, length)
            if bucket > rows:
                padded = padded_rows(feeds, bucket, self.planner.pad_id)
                return [output[:rows] for output in self._run(padded, outputs)]
        return self._run(feeds, outputs)

    def _run(self, feeds: dict[str, np.ndarray], outputs: Sequence[str]) -> list[np.ndarray]:
        if self.bound:
            return run_bound(
                self.session,
                feeds,
                list(outputs),
                "cuda",
                self.config.device_id,
                run_options=self._no_graph,
            )
        return list(self.session_for(feeds).run(list(outputs), feeds))


def check_packing(config: EngineConfig, manifest_extra: dict[str, str]) -> None:
    """
    A packed model (prepared with packing) runs only on CUDA (RemovePadding and PackedAttention
    have no CPU kernels) and without CUDA graphs (its shapes follow each batch's token count).
    """
    if manifest_extra.get("packing") != "true":
        return
    if config.device is not Device.CUDA:
        raise ConfigError(
            "a packed model runs on device cuda only: its operators have no CPU kernels"
        )
    if config.cuda.graphs:
        raise ConfigError(
            "cuda_graphs cannot run a packed model: its shapes change with every batch's tokens"
        )
