"""The Engine: an ONNX Runtime session over a prepared model directory, and the tasks it serves.

`run` executes one batch exactly as given (its rows padded by the BatchPlanner, never re-sorted or
sliced: whoever formed the batch planned it within the device's budget). The direct calls
(`embed`, `fill_mask`, `classify`, `classify_pairs`) are for callers without a batcher: they build
the work as the service does (TaskInputs) and run it in planned batches.

Thread-safe: ONNX Runtime sessions may run concurrently, and the engine keeps no per-call state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from bert_runtime.config import Device, EngineConfig, Pooling, check_precision_for_device
from bert_runtime.errors import InputError
from bert_runtime.manifest import MODEL_NAME, Manifest, read_manifest
from bert_runtime.serving import placement
from bert_runtime.serving.device_runner import DeviceRunner, check_packing
from bert_runtime.serving.planner import Batch, BatchPlanner
from bert_runtime.serving.session import (
    CUDA_PROVIDER,
    DeviceInfo,
    create_session,
    device_info,
    session_options,
)
from bert_runtime.serving.task_inputs import EmbedOptions, ModelCapabilities, TaskInputs, Work
from bert_runtime.serving.tasks import (
    AnyResult,
    Classification,
    ClassifyRequest,
    Embedding,
    EmbedRequest,
    FillMaskRequest,
    FillMaskResult,
    MaskCandidate,
    TaskRequest,
    classification,
    pooled,
)
from bert_runtime.serving.tokenizer import TextTokenizer
from bert_runtime.serving.warmup import warmup_shapes

logger = logging.getLogger(__name__)
R = TypeVar("R", bound=AnyResult)
# Directories prepared before class_logits existed have the scores alone.
_CLASS_OUTPUTS = ("class_probabilities", "class_logits")
_EMBED = EmbedRequest()


class Engine:
    """Loads a prepared model and runs batches of token-id sequences, one task type per batch."""

    def __init__(self, model_dir: Path, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.manifest: Manifest = read_manifest(model_dir)
        check_packing(self.config, self.manifest.extra)
        check_precision_for_device(self.config.device, self.manifest.precision)
        self.max_length = min(self.config.max_sequence_length, self.manifest.max_sequence_length)
        if self.max_length < self.config.max_sequence_length:
            logger.warning(
                "max_sequence_length %d is more than %s takes; its limit is %d tokens",
                self.config.max_sequence_length,
                self.manifest.source,
                self.max_length,
            )
        self.tokenizer = TextTokenizer.from_dir(model_dir, self.max_length, self.config.truncation)
        started = time.perf_counter()
        options = session_options(self.config)
        # Strict CUDA: the first run is profiled to see where every node ran (placement.py).
        strict_cuda = self.config.device is Device.CUDA and self.config.strict_device
        if strict_cuda:
            placement.enable_profiling(options)
        self._session = create_session(model_dir / MODEL_NAME, self.config, options)
        self._on_cuda = CUDA_PROVIDER in self._session.get_providers()
        self._class_outputs = [name for name in _CLASS_OUTPUTS if name in self.manifest.outputs]
        budget, pad_id = self.config.budget_for(self.manifest.precision), self.tokenizer.pad_id
        self.planner = BatchPlanner(budget, pad_id, self.manifest.max_sequence_length)
        self._runner = DeviceRunner(
            self._session, self.config, self._on_cuda, self.planner, self.max_length
        )
        self.capabilities = self._capabilities()
        self.inputs = TaskInputs(self.tokenizer, self.manifest, self.capabilities)
        self.graph_buckets = self._runner.buckets
        self._model_path = model_dir / MODEL_NAME
        self.placement: placement.Placement | None = None
        if strict_cuda:
            self.placement = self._check_placement()
        self.load_seconds = time.perf_counter() - started
        self.warmup_seconds = 0.0
        # Measured at warm-up (None without one).
        self.seconds_per_token: float | None = None
        if self.config.warmup:
            self.warmup()

    def _capabilities(self) -> ModelCapabilities:
        labels = 0
        for output in self._session.get_outputs():
            if output.name == "class_probabilities":
                width = output.shape[-1]
                labels = width if isinstance(width, int) else len(self.manifest.id2label)
        return ModelCapabilities(
            fill_mask="mask_positions" in self._runner.input_names
            and self.tokenizer.mask_id is not None,
            classification="class_probabilities" in self.manifest.outputs,
            num_labels=labels,
            rerank=labels == 1 and "class_logits" in self._class_outputs,
        )

    @property
    def num_labels(self) -> int:
        """The classification head's labels, 0 without one."""
        return self.capabilities.num_labels

    @property
    def device_info(self) -> DeviceInfo:
        return device_info(self._session, self.config.device_id)

    def _check_placement(self) -> placement.Placement:
        """One profiled run (no CUDA graph), then refuse floating-point work placed on CPU."""
        try:
            short = np.full(min(8, self.max_length), self.tokenizer.pad_id, dtype=np.int32)
            batch = self.planner.pad([short])
            self._infer(batch, ["mean_embedding"], graph=False)
        finally:
            found = placement.finish_profiling(self._session)
        logger.info("node placement: %s", found.summary())
        placement.check_no_cpu_compute(found)
        return found

    # --- running ---------------------------------------------------------------------------------
    def warmup(self) -> None:
        """
        Run every shape of `warmup.warmup_shapes` once (each task's outputs on CUDA with graphs), so
        no request pays for set-up; on CPU, time the thread split and a run's fixed cost.
        """
        started = time.perf_counter()
        runner = self._runner
        shapes = warmup_shapes(
            self.planner, self.max_length, self._on_cuda, self.graph_buckets, runner.bucket_rows
        )
        requests: list[TaskRequest[Any]] = [_EMBED]
        if self.graph_buckets is not None and self.capabilities.classification:
            requests.append(ClassifyRequest())
        for rows, length in shapes:
            for request in requests:
                self._run_padding(rows, length, request)
        runner.measure_split(self._model_path)  # CPU only, as the next: the runs that will serve
        runner.measure_run_overhead(self._run_padding)
        # The largest shape once more, timed: the speed the batcher estimates waits with until it
        # has measured real batches (so admission by time works from the first request).
        rows, length = max(shapes, key=lambda shape: shape[0] * shape[1])
        timed = time.perf_counter()
        self._run_padding(rows, length)
        self.seconds_per_token = (time.perf_counter() - timed) / (rows * length)
        self.warmup_seconds = time.perf_counter() - started
        logger.info("warm-up took %.3fs (%d shapes)", self.warmup_seconds, len(shapes))

    def _run_padding(self, rows: int, length: int, request: TaskRequest[Any] = _EMBED) -> None:
        tokens = np.full(length, self.tokenizer.pad_id, dtype=np.int32)
        self.run([tokens] * rows, [request] * rows)

    def pad(self, sequences: Sequence[np.ndarray]) -> Batch:
        """The model inputs for `sequences` as one padded batch (BatchPlanner.pad)."""
        return self.planner.pad(sequences)

    def run(self, sequences: Sequence[np.ndarray], requests: Sequence[TaskRequest[R]]) -> list[R]:
        """Run one batch as given (padded, not re-sorted); every request of one type."""
        if not sequences or len(requests) != len(sequences):
            raise InputError("a batch needs one request per sequence, and at least one")
        kind = type(requests[0])
        if any(type(request) is not kind for request in requests):
            raise InputError("a batch holds requests of exactly one task type")
        results: list[Any]
        if kind is EmbedRequest:
            results = self._embed(
                self.planner.pad(sequences), cast(Sequence[EmbedRequest], requests)
            )
        elif kind is FillMaskRequest:
            results = self._fill_mask(
                self.planner.pad(sequences), cast(Sequence[FillMaskRequest], requests)
            )
        elif kind is ClassifyRequest:
            starts = [r.second_text_start for r in cast(Sequence[ClassifyRequest], requests)]
            for sequence, start in zip(sequences, starts, strict=True):
                if not 0 <= start < max(len(sequence), 1):
                    raise InputError(f"second_text_start {start} is outside the text's tokens")
            batch = self.planner.pad(sequences, starts)
            results = self._classify(batch)
        else:
            raise InputError(f"unknown task request {kind.__name__}")
        return cast(list[R], results)

    def _embed(self, batch: Batch, requests: Sequence[EmbedRequest]) -> list[Embedding]:
        cls_rows, mean_rows = self._infer(batch, ["cls_embedding", "mean_embedding"])
        manifest = self.manifest
        vectors = pooled(
            cls_rows,
            mean_rows,
            [(r.pooling or manifest.pooling) is Pooling.CLS for r in requests],
            [manifest.normalize if r.normalize is None else r.normalize for r in requests],
        )
        return [
            Embedding(vector, int(length))
            for vector, length in zip(vectors, batch.lengths, strict=True)
        ]

    def _classify(self, batch: Batch) -> list[Classification]:
        scores, *logits = self._infer(batch, self._class_outputs)
        return [
            classification(
                scores[i],
                logits[0][i] if logits else None,
                self.manifest.id2label,
                int(batch.lengths[i]),
            )
            for i in range(len(batch.lengths))
        ]

    def _fill_mask(self, batch: Batch, requests: Sequence[FillMaskRequest]) -> list[FillMaskResult]:
        positions = np.argwhere(batch.input_ids == self.tokenizer.mask_id).astype(np.int64)
        top_k = min(max(r.top_k for r in requests), self.manifest.vocab_size)
        scores, ids = self._infer(batch, ["mask_top_scores", "mask_top_ids"], positions, top_k)
        results: list[FillMaskResult] = []
        for row, request in enumerate(requests):
            rows = np.flatnonzero(positions[:, 0] == row)
            masks = [
                [
                    MaskCandidate(int(token_id), token, float(score))
                    for token_id, token, score in zip(
                        ids[r, : request.top_k],
                        self.tokenizer.token_texts(ids[r, : request.top_k]),
                        scores[r, : request.top_k],
                        strict=True,
                    )
                ]
                for r in rows
            ]
            results.append(FillMaskResult(masks, int(batch.lengths[row])))
        return results

    def _infer(
        self,
        batch: Batch,
        outputs: list[str],
        mask_positions: np.ndarray | None = None,
        top_k: int = 1,
        *,
        graph: bool = True,
    ) -> list[np.ndarray]:
        feeds = self._runner.feeds(batch, mask_positions, top_k)
        return self._runner.run(feeds, outputs, graph=graph)

    # --- direct calls, for callers without a batcher ----------------------------------------------
    def embed(
        self,
        texts: Sequence[str],
        request: EmbedRequest | None = None,
        prompt_name: str | None = None,
    ) -> np.ndarray:
        """
        One vector per text, a [texts, manifest.embedding_size] array: pooled, projected by its
        Dense layers (if any) and normalized as the model says (a sentence-transformers model's
        own settings; L2-normalized mean pooling otherwise) unless `request` says otherwise, with
        the model's prompt named (or its default prompt) in front of each text.
        """
        request = request or EmbedRequest()
        options = EmbedOptions(request.pooling, request.normalize, prompt_name)
        results = self.run_work(self.inputs.embed(texts, options))
        return np.stack([r.vector for r in results])

    def fill_mask(self, texts: Sequence[str], top_k: int = 5) -> list[FillMaskResult]:
        """The `top_k` best tokens for every mask token of every text; each text needs one."""
        return self.run_work(self.inputs.fill_mask(texts, top_k))

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        """The label (from the model's id2label), scores and logits of every text."""
        return self.run_work(self.inputs.classify(texts))

    def classify_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[Classification]:
        """Like `classify`, for sentence pairs (NLI, cross-encoder rerankers, paraphrase)."""
        return self.run_work(self.inputs.classify_pairs(pairs))

    def run_work(self, work: Work[R]) -> list[R]:
        """Any number of texts' work, run as the planner's batches; results in the order given."""
        if not work.sequences:
            raise InputError("no texts to run")
        results: list[R | None] = [None] * len(work.sequences)
        for rows in self.planner.groups([len(s) for s in work.sequences]):
            outcome = self.run([work.sequences[i] for i in rows], [work.requests[i] for i in rows])
            for row, result in zip(rows, outcome, strict=True):
                results[row] = result
        return [result for result in results if result is not None]
