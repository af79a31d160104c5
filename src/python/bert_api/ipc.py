"""The messages between front-end workers and the engine process, and their framing.

With WORKERS > 1 the HTTP front ends (HTTP, JSON, tokenization) run in worker processes and hand
token ids to the one process that owns the model and its batch queue, over a Unix socket. Each
message is a 4-byte big-endian length and a msgpack body (msgspec: typed, one pass, no pickle).
Token ids travel as int32 bytes, embeddings as float32 bytes. Both ends are asyncio Protocols that
parse whole messages from whatever bytes arrive (Frames), with no coroutine per message: the socket
costs a worker and the engine a few microseconds a request.
"""

from __future__ import annotations

import struct
from typing import Literal

import msgspec
import numpy as np

from bert_runtime.config import Pooling, TruncationPolicy
from bert_runtime.serving.description import ModelDescription
from bert_runtime.serving.task_inputs import ModelCapabilities
from bert_runtime.serving.tasks import (
    AnyResult,
    Classification,
    ClassifyRequest,
    Embedding,
    EmbedRequest,
    FillMaskRequest,
    FillMaskResult,
    TaskRequest,
)

_LENGTH = struct.Struct(">I")
# Far above any message the request limits allow (256 texts x 512 tokens, or their embeddings).
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
Kind = Literal["embed", "fill-mask", "classify"]


class ModelSetup(msgspec.Struct):
    """What a worker needs to prepare requests itself: where the model is, and what it does."""

    prepared_dir: str
    max_length: int
    truncation: TruncationPolicy
    capabilities: ModelCapabilities
    description: ModelDescription


class Status(msgspec.Struct, tag="status"):
    """The engine's state (sent on connect and on every change)."""

    status: str
    error: str | None = None
    setup: ModelSetup | None = None


class Submit(msgspec.Struct, tag="submit"):
    id: int
    kind: Kind
    sequences: list[bytes]
    deadline: float | None
    pooling: Pooling | None = None
    normalize: bool | None = None
    top_k: int = 5
    second_starts: list[int] = []


class Cancel(msgspec.Struct, tag="cancel"):
    """The worker's client has gone: drop the submission's texts still waiting."""

    id: int


class Embedded(msgspec.Struct, tag="embedded"):
    id: int
    vectors: bytes
    width: int
    tokens: list[int]


class Filled(msgspec.Struct, tag="filled"):
    id: int
    results: list[FillMaskResult]


class Classified(msgspec.Struct, tag="classified"):
    id: int
    results: list[Classification]


class Failed(msgspec.Struct, tag="failed"):
    id: int
    error: Literal["overloaded", "deadline", "shutting_down", "input", "internal"]
    message: str
    retry_after_s: float = 0.0


ToEngine = Submit | Cancel
ToWorker = Status | Embedded | Filled | Classified | Failed

_encoder = msgspec.msgpack.Encoder()
_to_engine = msgspec.msgpack.Decoder(ToEngine)
_to_worker = msgspec.msgpack.Decoder(ToWorker)


def frame(message: ToEngine | ToWorker) -> bytes:
    body = _encoder.encode(message)
    return _LENGTH.pack(len(body)) + body


class Frames:
    """Whole messages out of a byte stream, however the bytes arrive (asyncio.Protocol side)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        bodies: list[bytes] = []
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > MAX_MESSAGE_BYTES:
                raise ValueError(f"a message of {length} bytes is over the limit")
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                break
            bodies.append(bytes(self._buffer[_LENGTH.size : end]))
            del self._buffer[:end]
        return bodies


def decode_to_engine(body: bytes) -> ToEngine:
    return _to_engine.decode(body)


def decode_to_worker(body: bytes) -> ToWorker:
    return _to_worker.decode(body)


def submit_message(
    id_: int,
    sequences: list[np.ndarray],
    requests: list[TaskRequest[AnyResult]],
    deadline: float | None,
) -> Submit:
    """A submission: one task's token ids and the parameters its requests share."""
    first = requests[0]
    blobs = [np.ascontiguousarray(s, dtype=np.int32).tobytes() for s in sequences]
    if isinstance(first, EmbedRequest):
        return Submit(id_, "embed", blobs, deadline, first.pooling, first.normalize)
    if isinstance(first, FillMaskRequest):
        return Submit(id_, "fill-mask", blobs, deadline, top_k=first.top_k)
    starts = [r.second_text_start for r in requests if isinstance(r, ClassifyRequest)]
    return Submit(id_, "classify", blobs, deadline, second_starts=starts)


def unpack_submit(message: Submit) -> tuple[list[np.ndarray], list[TaskRequest[AnyResult]]]:
    """The engine's side of `submit_message`."""
    sequences = [np.frombuffer(blob, dtype=np.int32) for blob in message.sequences]
    requests: list[TaskRequest[AnyResult]]
    if message.kind == "embed":
        requests = [EmbedRequest(message.pooling, message.normalize)] * len(sequences)
    elif message.kind == "fill-mask":
        requests = [FillMaskRequest(message.top_k)] * len(sequences)
    else:
        starts = message.second_starts or [0] * len(sequences)
        requests = [ClassifyRequest(second_text_start=s) for s in starts]
    return sequences, requests


def result_message(id_: int, results: list[AnyResult]) -> Embedded | Filled | Classified:
    first = results[0]
    if isinstance(first, Embedding):
        embedded = [r for r in results if isinstance(r, Embedding)]
        # The rows' bytes joined, not np.stack: 0.6 against 2.8 us for a single text, whose
        # answer the engine process sends for every request (bench/engine_link_cost.py).
        vectors = b"".join([np.asarray(r.vector, dtype=np.float32).tobytes() for r in embedded])
        width = len(first.vector)
        return Embedded(id_, vectors, width, [r.num_tokens for r in embedded])
    if isinstance(first, FillMaskResult):
        return Filled(id_, [r for r in results if isinstance(r, FillMaskResult)])
    return Classified(id_, [r for r in results if isinstance(r, Classification)])


def unpack_results(message: Embedded | Filled | Classified) -> list[AnyResult]:
    if isinstance(message, Embedded):
        vectors = np.frombuffer(message.vectors, dtype=np.float32).reshape(-1, message.width)
        return [Embedding(row, tokens) for row, tokens in zip(vectors, message.tokens, strict=True)]
    return list(message.results)
