"""CUDA graphs for bucketed batch shapes, through IO binding at fixed device addresses.

ONNX Runtime's CUDA provider (`enable_cuda_graph`, onnxruntime 1.31.1) captures a session's kernel
launches on the first run of a graph id (the run config entry `gpu_graph_id`; -1 runs without
graphs) and replays them on later runs, without the per-kernel launch cost that dominates small
batches. A replay reads and writes the very device buffers it was captured with, so every input
and output is bound once to an OrtValue of a fixed shape that is then updated in place
(`OrtValue.update_inplace`), and one graph serves exactly one shape: batches are padded up to a
few buckets (rows: powers of two; lengths: multiples of 32) instead of one graph per shape the
planner can produce. Padding rows are given one attended token (a zero-length row is not a case
every fused attention kernel defines), and only the real rows are returned.

Nothing here is CUDA-specific except the graph ids: with device "cpu" the same binding and buffer
reuse run on CPU, which is how the test suite checks them.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

# The length buckets' step: fine enough that a batch pads at most 31 tokens past the planner.
LENGTH_STEP = 32
GRAPH_ID_KEY = "gpu_graph_id"
NO_GRAPH = "-1"
# The graph inputs a bucketed batch feeds: [rows, length] int32 each.
BATCH_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


@dataclass(frozen=True)
class GraphBuckets:
    """The (rows, length) shapes that get a graph: every pair within the token budget."""

    rows: tuple[int, ...]
    lengths: tuple[int, ...]
    max_tokens: int

    def shape_for(self, rows: int, length: int) -> tuple[int, int] | None:
        """The smallest bucket that holds a batch of `rows` x `length`, or None."""
        bucket_rows = next((r for r in self.rows if r >= rows), None)
        bucket_length = next((n for n in self.lengths if n >= length), None)
        if bucket_rows is None or bucket_length is None:
            return None
        if bucket_rows * bucket_length > self.max_tokens:
            return None
        return bucket_rows, bucket_length

    def shapes(self) -> list[tuple[int, int]]:
        """Every bucket, smallest first: what warm-up captures."""
        return [
            (rows, length)
            for length, rows in itertools.product(self.lengths, self.rows)
            if rows * length <= self.max_tokens
        ]


def graph_buckets(max_rows: int, max_tokens: int, longest: int) -> GraphBuckets:
    """
    Buckets for batches of at most `max_rows` rows and `max_tokens` padded tokens, whose padded
    length is at most `longest` (the planner's padded maximum length).
    """
    rows = sorted({2**power for power in range(max_rows.bit_length()) if 2**power < max_rows})
    lengths = list(range(LENGTH_STEP, longest, LENGTH_STEP))
    return GraphBuckets(tuple([*rows, max_rows]), tuple([*lengths, longest]), max_tokens)


def run_options(graph_id: str) -> ort.RunOptions:
    """RunOptions naming a CUDA graph (`NO_GRAPH`: run without capture or replay)."""
    options = ort.RunOptions()
    options.add_run_config_entry(GRAPH_ID_KEY, graph_id)
    return options


class _Slot:
    """One bucket's bound buffers: host staging arrays, device OrtValues and their binding."""

    def __init__(
        self,
        session: ort.InferenceSession,
        shape: tuple[int, int],
        outputs: Sequence[str],
        graph_id: int,
        device: tuple[str, int],
    ) -> None:
        rows, length = shape
        self.staging = {name: np.zeros(shape, np.int32) for name in BATCH_INPUTS}
        self.inputs = {
            name: ort.OrtValue.ortvalue_from_shape_and_type(shape, np.int32, *device)
            for name in BATCH_INPUTS
        }
        declared = {output.name: output for output in session.get_outputs()}
        self.outputs = []
        for name in outputs:
            dims = [rows, *declared[name].shape[1:]]
            kind = _NUMPY_TYPES[declared[name].type]
            self.outputs.append(ort.OrtValue.ortvalue_from_shape_and_type(dims, kind, *device))
        self.binding = session.io_binding()
        for name, value in self.inputs.items():
            self.binding.bind_ortvalue_input(name, value)
        for name, value in zip(outputs, self.outputs, strict=True):
            self.binding.bind_ortvalue_output(name, value)
        self.run_options = run_options(str(graph_id))

    def fill(self, feeds: dict[str, np.ndarray], pad_id: int) -> None:
        """Copy a batch into the bucket's buffers; padding rows attend to one token."""
        rows, length = feeds["input_ids"].shape
        ids, mask, types = (self.staging[name] for name in BATCH_INPUTS)
        ids.fill(pad_id)
        mask.fill(0)
        types.fill(0)
        for name in BATCH_INPUTS:
            self.staging[name][:rows, :length] = feeds[name]
        mask[rows:, 0] = 1
        for name in BATCH_INPUTS:
            self.inputs[name].update_inplace(self.staging[name])


class GraphRunner:
    """
    Runs batches through one bound slot per (bucket, outputs): captured as a CUDA graph on first
    use when the session has graphs on. One batch at a time: the slots' buffers are shared.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        buckets: GraphBuckets,
        pad_id: int,
        device: str = "cuda",
        device_id: int = 0,
    ) -> None:
        self.session = session
        self.buckets = buckets
        self.pad_id = pad_id
        self._device = (device, device_id)
        self._slots: dict[tuple[tuple[int, int], tuple[str, ...]], _Slot] = {}
        self._lock = threading.Lock()

    def accepts(self, feeds: dict[str, np.ndarray]) -> bool:
        """Whether a batch with these feeds fits a bucket (only the three 2-D inputs do)."""
        if set(feeds) != set(BATCH_INPUTS):
            return False
        return self.buckets.shape_for(*feeds["input_ids"].shape) is not None

    @property
    def captured(self) -> int:
        """How many slots (graphs, on CUDA) exist."""
        return len(self._slots)

    def run(self, feeds: dict[str, np.ndarray], outputs: Sequence[str]) -> list[np.ndarray]:
        """The outputs for the batch's own rows; the batch must be `accepts`-ed."""
        rows, length = feeds["input_ids"].shape
        shape = self.buckets.shape_for(rows, length)
        if shape is None:
            raise ValueError(f"no bucket holds a batch of {rows} x {length}")
        with self._lock:
            key = (shape, tuple(outputs))
            slot = self._slots.get(key)
            if slot is None:
                # Graph ids from 1: 0 is ONNX Runtime's default id for runs that name none.
                slot = _Slot(self.session, shape, outputs, len(self._slots) + 1, self._device)
                self._slots[key] = slot
            slot.fill(feeds, self.pad_id)
            self.session.run_with_iobinding(slot.binding, slot.run_options)
            return [output[:rows] for output in slot.binding.copy_outputs_to_cpu()]
