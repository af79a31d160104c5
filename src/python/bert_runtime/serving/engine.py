"""The Engine: one ONNX Runtime session over a prepared model directory, and the tasks it serves.

Thread-safe: ONNX Runtime sessions may run concurrently, and the engine keeps no per-call state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bert_runtime.config import EngineConfig, Truncation, check_precision_for_device
from bert_runtime.errors import InputError
from bert_runtime.manifest import MODEL_NAME, Manifest, read_manifest
from bert_runtime.serving.session import (
    CUDA_PROVIDER,
    DeviceInfo,
    create_session,
    device_info,
    run_bound,
)
from bert_runtime.serving.tasks import (
    Classification,
    ClassifyRequest,
    Embedding,
    EmbedRequest,
    FillMaskRequest,
    FillMaskResult,
    MaskCandidate,
    TaskRequest,
    TaskResult,
    classification,
    pool,
)
from bert_runtime.serving.tokenizer import Batch, TextTokenizer, pad_batch, row_slices

logger = logging.getLogger(__name__)

# Padded lengths round up to this multiple unless the caller says otherwise (the Batcher's default).
PAD_MULTIPLE = 8


def _label_count(session: ort.InferenceSession, manifest: Manifest) -> int:
    """The classification head's labels (its output's width), 0 without one."""
    for output in session.get_outputs():
        if output.name == "class_probabilities":
            width = output.shape[-1]
            return width if isinstance(width, int) else len(manifest.id2label)
    return 0


class Engine:
    """Loads a prepared model and runs batches of token-id sequences for one task type at a time."""

    def __init__(self, model_dir: Path, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.manifest: Manifest = read_manifest(model_dir)
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
        self._session = create_session(model_dir / MODEL_NAME, self.config)
        self._on_cuda = CUDA_PROVIDER in self._session.get_providers()
        self._input_names = {i.name for i in self._session.get_inputs()}
        self.num_labels = _label_count(self._session, self.manifest)
        # Directories prepared before class_logits existed have the scores alone.
        class_outputs: tuple[str, ...] = ("class_probabilities", "class_logits")
        self._class_outputs = [name for name in class_outputs if name in self.manifest.outputs]
        self.load_seconds = time.perf_counter() - started
        self.warmup_seconds = 0.0
        if self.config.warmup:
            self.warmup()

    # --- what the model can do -------------------------------------------------------------------
    @property
    def supports_fill_mask(self) -> bool:
        return "mask_positions" in self._input_names and self.tokenizer.mask_id is not None

    @property
    def supports_classification(self) -> bool:
        return "class_probabilities" in self.manifest.outputs

    @property
    def supports_rerank(self) -> bool:
        """
        A one-label head whose score is the sigmoid of its logit; graphs from before class_logits
        scored one logit with softmax (always 1.0).
        """
        return self.num_labels == 1 and "class_logits" in self._class_outputs

    @property
    def device_info(self) -> DeviceInfo:
        return device_info(self._session, self.config.device_id)

    def check_request(self, request: TaskRequest, sequence: np.ndarray | None = None) -> None:
        """Raise InputError if this model cannot serve `request` (for `sequence`, when given)."""
        if isinstance(request, FillMaskRequest):
            if not self.supports_fill_mask:
                raise InputError("this model has no fill-mask head")
            if request.top_k < 1:
                raise InputError(f"top_k must be >= 1, got {request.top_k}")
            if sequence is not None and not np.any(sequence == self.tokenizer.mask_id):
                where = ""
                if len(sequence) >= self.max_length:
                    where = (
                        f" within its first {self.max_length} tokens (longer texts are cut there)"
                    )
                raise InputError(f"text has no {self.tokenizer.mask_token} token{where}")
        elif isinstance(request, ClassifyRequest):
            if not self.supports_classification:
                raise InputError("this model has no classification head")
            start = request.second_text_start
            if start < 0 or (sequence is not None and start >= len(sequence)):
                raise InputError(f"second_text_start {start} is outside the text's tokens")

    # --- running ---------------------------------------------------------------------------------
    def warmup(self) -> None:
        """
        Run the shortest and longest shapes once, so the first request does not pay for allocation.
        """
        started = time.perf_counter()
        for length in sorted({min(8, self.max_length), self.max_length}):
            sequence = np.full(length, self.tokenizer.pad_id, dtype=np.int32)
            self.run([sequence], [EmbedRequest()])
        self.warmup_seconds = time.perf_counter() - started
        logger.info("warm-up took %.3fs", self.warmup_seconds)

    def pad(self, sequences: Sequence[np.ndarray], multiple: int = PAD_MULTIPLE) -> Batch:
        return pad_batch(
            sequences, self.tokenizer.pad_id, multiple, self.manifest.max_sequence_length
        )

    def run(
        self,
        sequences: Sequence[np.ndarray],
        requests: Sequence[TaskRequest],
        multiple: int = PAD_MULTIPLE,
    ) -> list[TaskResult]:
        """
        Run one batch; every request must be of the same type.

        On CPU a batch over `cpu_slice_tokens` padded tokens runs as slices (see EngineConfig) of
        its rows sorted by length, so each slice pads only to rows of about its own length; results
        are in the order given.
        """
        kinds = {type(r) for r in requests}
        if len(kinds) != 1 or len(requests) != len(sequences):
            raise InputError("a batch holds requests of exactly one task type, one per sequence")
        slice_tokens = 0 if self._on_cuda else self.config.cpu_slice_tokens
        if not slice_tokens:
            return self._run_slice(sequences, requests, multiple)
        return self._in_length_order(sequences, requests, slice_tokens, multiple, self._run_slice)

    def _in_length_order(
        self,
        sequences: Sequence[np.ndarray],
        requests: Sequence[TaskRequest],
        max_tokens: int,
        multiple: int,
        run_rows: Callable[[list[np.ndarray], list[TaskRequest], int], list[TaskResult]],
    ) -> list[TaskResult]:
        """
        `run_rows` over consecutive groups of the rows sorted by length, each within `max_tokens`
        padded tokens; the results in the order given.
        """
        order = sorted(range(len(sequences)), key=lambda row: len(sequences[row]))
        lengths = [len(sequences[row]) for row in order]
        ceiling = self.manifest.max_sequence_length
        results: list[TaskResult | None] = [None] * len(sequences)
        for rows in row_slices(lengths, max_tokens, multiple, ceiling):
            chosen = order[rows]
            outcome = run_rows(
                [sequences[row] for row in chosen], [requests[row] for row in chosen], multiple
            )
            for row, result in zip(chosen, outcome, strict=True):
                results[row] = result
        return [result for result in results if result is not None]

    def _run_slice(
        self, sequences: Sequence[np.ndarray], requests: Sequence[TaskRequest], multiple: int
    ) -> list[TaskResult]:
        batch = self.pad(sequences, multiple)
        embeds = [r for r in requests if isinstance(r, EmbedRequest)]
        if embeds:
            cls_rows, mean_rows = self._infer(batch, ["cls_embedding", "mean_embedding"])
            return [
                Embedding(self._pool(cls_rows[i], mean_rows[i], r), int(batch.lengths[i]))
                for i, r in enumerate(embeds)
            ]
        fill_masks = [r for r in requests if isinstance(r, FillMaskRequest)]
        if fill_masks:
            return self._fill_mask(batch, fill_masks)
        for row, request in enumerate(requests):
            if isinstance(request, ClassifyRequest) and request.second_text_start:
                batch.token_type_ids[row, request.second_text_start : batch.lengths[row]] = 1
        scores, *logits = self._infer(batch, self._class_outputs)
        return [
            classification(
                scores[i],
                logits[0][i] if logits else None,
                self.manifest.id2label,
                int(batch.lengths[i]),
            )
            for i in range(len(requests))
        ]

    def _pool(self, cls_row: np.ndarray, mean_row: np.ndarray, request: EmbedRequest) -> np.ndarray:
        """The request's pooling and normalization, or the model's own where it names none."""
        pooling = request.pooling or self.manifest.pooling
        normalize = self.manifest.normalize if request.normalize is None else request.normalize
        return pool(cls_row, mean_row, pooling, normalize)

    def _fill_mask(self, batch: Batch, requests: Sequence[FillMaskRequest]) -> list[TaskResult]:
        positions = np.argwhere(batch.input_ids == self.tokenizer.mask_id).astype(np.int64)
        top_k = min(max(r.top_k for r in requests), self.manifest.vocab_size)
        scores, ids = self._infer(batch, ["mask_top_scores", "mask_top_ids"], positions, top_k)
        results: list[TaskResult] = []
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
    ) -> list[np.ndarray]:
        # Only the inputs the graph takes: ModernBERT's has no token types.
        feeds = {k: v for k, v in batch.model_inputs().items() if k in self._input_names}
        if "mask_positions" in self._input_names:
            feeds["mask_positions"] = (
                mask_positions if mask_positions is not None else np.zeros((0, 2), np.int64)
            )
            feeds["top_k"] = np.array([top_k], np.int64)
        if self._on_cuda and self.config.io_binding:
            return run_bound(self._session, feeds, outputs, "cuda", self.config.device_id)
        return list(self._session.run(outputs, feeds))

    # --- convenience, for callers without a batcher ----------------------------------------------
    def embed(
        self,
        texts: Sequence[str],
        request: EmbedRequest | None = None,
        prompt_name: str | None = None,
    ) -> np.ndarray:
        """
        One vector per text, a [texts, manifest.embedding_size] array: by default pooled, projected
        by its Dense layers (if any) and normalized as the model says (a sentence-transformers
        model's own settings; L2-normalized mean pooling otherwise), with the model's prompt named
        (or its default prompt) in front of each text.
        """
        results = self.run_texts(self.prompted(texts, prompt_name), request or EmbedRequest())
        return np.stack([r.vector for r in results if isinstance(r, Embedding)])

    def prompted(self, texts: Sequence[str], prompt_name: str | None = None) -> list[str]:
        """
        Texts to embed with the prompt `prompt_name` in front, as sentence-transformers puts it;
        without a name, the model's default prompt (none for most models).
        """
        prompts = self.manifest.prompts
        name = prompt_name if prompt_name is not None else self.manifest.default_prompt_name
        if name is None:
            return list(texts)
        if name not in prompts:
            known = ", ".join(repr(k) for k in sorted(prompts)) or "none"
            raise InputError(f"unknown prompt_name {name!r}: this model's prompts are {known}")
        return [prompts[name] + text for text in texts]

    def fill_mask(self, texts: Sequence[str], top_k: int = 5) -> list[FillMaskResult]:
        """
        The `top_k` best tokens for every mask token ([MASK], RoBERTa's <mask>) of every text; each
        text needs one.
        """
        results = self.run_texts(texts, FillMaskRequest(top_k))
        return [r for r in results if isinstance(r, FillMaskResult)]

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        """The label (from the model's id2label), scores and logits of every text."""
        results = self.run_texts(texts, ClassifyRequest())
        return [r for r in results if isinstance(r, Classification)]

    def classify_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[Classification]:
        """Like `classify`, for sentence pairs (NLI, cross-encoder rerankers, paraphrase)."""
        sequences, requests = self.pair_inputs(pairs)
        results = self.run_sequences(sequences, requests)
        return [r for r in results if isinstance(r, Classification)]

    def pair_inputs(
        self, pairs: Sequence[tuple[str, str]], truncation: Truncation | None = None
    ) -> tuple[list[np.ndarray], list[TaskRequest]]:
        """Token ids and a ClassifyRequest (marking where the second text starts) per pair."""
        encoded = self.tokenizer.encode_pairs(pairs, truncation)
        requests: list[TaskRequest] = [ClassifyRequest(second_text_start=s) for _, s in encoded]
        return [ids for ids, _ in encoded], requests

    def run_texts(self, texts: Sequence[str], request: TaskRequest) -> list[TaskResult]:
        """Tokenize `texts` and run `request` on each (see `run_sequences`)."""
        sequences = self.tokenizer.encode(texts)
        return self.run_sequences(sequences, [request] * len(sequences))

    def run_sequences(
        self, sequences: Sequence[np.ndarray], requests: Sequence[TaskRequest]
    ) -> list[TaskResult]:
        """
        Check every request, then run any number of sequences as batches of similar lengths
        within `direct_batch_tokens`; results in the order given.
        """
        if not sequences:
            raise InputError("no sequences to run")
        for sequence, request in zip(sequences, requests, strict=True):
            self.check_request(request, sequence)
        budget = self.config.direct_batch_tokens
        return self._in_length_order(sequences, requests, budget, PAD_MULTIPLE, self.run)
