"""Prepare a model: source -> optimized ONNX + tokenizer + manifest, atomically and idempotently.

The output directory is written under a temporary name and renamed into place, so a reader never
sees a half written model. The cache key covers every input (source file hashes, precision, device,
builder version): if the directory already holds a model with that key, nothing is done. Concurrent
prepares into one parent directory take turns (an flock on it), so a model is built once, and the
others find it done.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bert_runtime.config import Device, Precision, check_precision_for_device
from bert_runtime.errors import ConfigError, ModelSourceError
from bert_runtime.files import read_json, sha256_file
from bert_runtime.manifest import (
    MANIFEST_NAME,
    MODEL_NAME,
    TOKENIZER_CONFIG_NAME,
    TOKENIZER_NAME,
    Manifest,
    read_manifest,
)
from bert_runtime.preparation import cuda_attention, sources
from bert_runtime.preparation.flash_attention import flash_attention
from bert_runtime.preparation.graph import build_graph
from bert_runtime.preparation.heads_graph import class_score_function
from bert_runtime.preparation.int8 import quantize_checked
from bert_runtime.preparation.model_config import BertConfig, Head, read_config
from bert_runtime.preparation.onnx_builder import OPSET
from bert_runtime.preparation.optimize import FUSED_OPS, apply_precision, count_ops, optimize
from bert_runtime.preparation.probe import save_model
from bert_runtime.preparation.st_settings import SentenceTransformersSettings, read_st_settings
from bert_runtime.preparation.tokenizer_files import write_tokenizer
from bert_runtime.preparation.weights import Weights

# Bump when the graph, its conversion or the manifest's reading of the source changes, so caches
# rebuild (4: tokenizers built from vocab.json + merges.txt, and vocab.txt with its saved settings;
# 5: RoBERTa's, XLM-R's and MPNet's positions from the token ids, pads not counted; 6: int8 per
# row with fp32 outlier channels, checked against fp32; 7: no SkipLayerNormalization on CPU, int8's
# Q, K and V as three MatMuls sharing one quantized input; 8: CPU attention unmasked for unpadded
# batches, int8 row scales inside MatMulIntegerToFloat, its biases inside the fp32 Gemm; 9: CPU
# attention's padding mask in its keys for padded batches, so both take the flash kernel).
BUILDER_VERSION = "9"

logger = logging.getLogger(__name__)


def cache_key(
    files: sources.SourceFiles, device: Device, precision: Precision, packing: bool = False
) -> str:
    digest = hashlib.sha256()
    for name in files.present():
        digest.update(f"{name}={sha256_file(files.path(name))}\n".encode())
    digest.update(f"{device.value}/{precision.value}/builder={BUILDER_VERSION}".encode())
    if device is Device.CUDA:
        digest.update(cuda_attention.cache_variant(packing).encode())
    return digest.hexdigest()[:32]


def prepare(
    source: str,
    out: Path,
    *,
    device: Device = Device.CPU,
    precision: Precision = Precision.FP32,
    cache_dir: Path | None = None,
    packing: bool = False,
) -> Manifest:
    """
    Prepare `source` into `out` for `device` at `precision`; returns the manifest. `packing`
    (CUDA only): padding-free attention (cuda_attention.to_packing_mode).
    """
    check_precision_for_device(device, precision)
    if packing and device is not Device.CUDA:
        raise ConfigError("packing needs device cuda (its operators have no CPU kernels)")
    files = sources.fetch(source, cache_dir)
    key = cache_key(files, device, precision, packing)
    existing = _prepared_with_key(out, key)
    if existing is not None:
        return existing

    out.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(out.parent):
        # Another process may have finished this very model while we waited.
        existing = _prepared_with_key(out, key)
        if existing is not None:
            return existing
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            manifest = _build(
                files, staging, device=device, precision=precision, key=key, packing=packing
            )
            _replace_dir(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return manifest


def _prepared_with_key(out: Path, key: str) -> Manifest | None:
    """The manifest of `out` if it already holds the model for `key`."""
    if not (out / MANIFEST_NAME).is_file():
        return None
    try:
        existing = read_manifest(out)
    except ModelSourceError:
        return None
    if existing.cache_key != key:
        return None
    logger.info("%s is already prepared (key %s)", out, key)
    return existing


@contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """
    Hold an exclusive flock on `directory` (stdlib, and on the directory itself, so no lock file is
    left behind); closing the descriptor releases it, also when the process dies.
    """
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("another prepare is writing into %s; waiting for it", directory)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _build(
    files: sources.SourceFiles,
    out: Path,
    *,
    device: Device,
    precision: Precision,
    key: str,
    packing: bool = False,
) -> Manifest:
    config = read_config(files.path(sources.CONFIG_FILE))
    st_settings = read_st_settings(files)
    # First: a tokenizer that cannot be made fails before the graph is built.
    write_tokenizer(files, out, model_type=config.model_type, lowercase_input=st_settings.lowercase)
    weights = Weights.load(files.path(sources.WEIGHTS_FILE))
    weights.check_shapes(config)
    heads = weights.heads(config)
    logger.info("building %s graph with heads %s", config.architecture, [h.value for h in heads])
    int8 = precision is Precision.INT8
    # int8 quantizes each layer's QKV projection per row as a MatMul of its own (quantize.py).
    graph = build_graph(config, weights, heads, st_settings.dense, fused_qkv=not int8)
    model = optimize(graph, config, for_gpu=device is Device.CUDA)
    if device is Device.CPU:
        model = flash_attention(model)
    max_length = _max_sequence_length(files, config, st_settings)
    accuracy: dict[str, float] = {}
    if int8:
        pad_id = config.padding_idx or 0  # padding is masked out; RoBERTa's is its pad token
        model, measured = quantize_checked(model, out / TOKENIZER_NAME, max_length, pad_id, out)
        accuracy = measured.as_manifest()
        logger.info("int8 accuracy against fp32: %s", accuracy)
    else:
        model = apply_precision(model, precision)
    cuda_notes: dict[str, str] = {}
    if device is Device.CUDA:
        model, cuda_notes = cuda_attention.for_cuda(model, packing=packing)
    fused = {op: count for op, count in count_ops(model).items() if op in FUSED_OPS}

    save_model(model, out / MODEL_NAME)
    shutil.copyfile(files.path(sources.CONFIG_FILE), out / sources.CONFIG_FILE)

    outputs = sorted(p.name for p in out.iterdir() if p.is_file())
    manifest = Manifest(
        source=files.source,
        revision=files.revision,
        architecture=config.architecture,
        device=device,
        precision=precision,
        opset=OPSET,
        builder_version=BUILDER_VERSION,
        max_sequence_length=max_length,
        hidden_size=config.hidden_size,
        embedding_size=_embedding_size(config, st_settings),
        vocab_size=config.vocab_size,
        heads=[h.value for h in heads],
        id2label=config.id2label,
        inputs=[i.name for i in model.graph.input],
        outputs=[o.name for o in model.graph.output],
        input_sha256={name: sha256_file(files.path(name)) for name in files.present()},
        output_sha256={name: sha256_file(out / name) for name in outputs},
        fused_ops=fused,
        cache_key=key,
        extra={**_class_scores(config, weights, heads), **cuda_notes},
        pooling=st_settings.pooling,
        normalize=st_settings.normalize,
        prompts=st_settings.prompts,
        default_prompt_name=st_settings.default_prompt_name,
        accuracy=accuracy,
    )
    (out / MANIFEST_NAME).write_text(manifest.to_json())
    return manifest


def _embedding_size(config: BertConfig, st_settings: SentenceTransformersSettings) -> int:
    """The width of the embeddings: the last Dense layer's output, else the hidden size."""
    if st_settings.dense:
        return int(st_settings.dense[-1].weight.shape[0])
    return config.hidden_size


def _max_sequence_length(
    files: sources.SourceFiles, config: BertConfig, st_settings: SentenceTransformersSettings
) -> int:
    """
    The position embeddings' length (past RoBERTa's offset), or the model's own limit when
    shorter: a sentence-transformers max_seq_length (sentence_bert_config.json), else the
    tokenizer's model_max_length (tokenizer_config.json: where transformers' tokenizers truncate,
    and where sentence-transformers 6 keeps max_seq_length).
    """
    limit = st_settings.max_length
    if limit is None:
        limit = _tokenizer_max_length(files)
    if limit is None:
        return config.max_positions
    return min(config.max_positions, limit)


def _tokenizer_max_length(files: sources.SourceFiles) -> int | None:
    path = files.path(TOKENIZER_CONFIG_NAME)
    if not path.is_file():
        return None
    value = read_json(path).get("model_max_length")
    # Tokenizers without a limit say so with a huge sentinel, which the positions then cap.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 2:
        return value
    return None


def _class_scores(config: BertConfig, weights: Weights, heads: list[Head]) -> dict[str, str]:
    """The manifest's note of how a classification head scores (softmax, sigmoid or identity)."""
    if Head.CLASSIFICATION not in heads:
        return {}
    return {"class_scores": class_score_function(config, weights).value}


def _replace_dir(staging: Path, out: Path) -> None:
    """Move `staging` to `out`; an existing `out` is moved aside first and removed after."""
    os.chmod(staging, 0o755)
    if out.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.replace(out, trash / out.name)
        os.replace(staging, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, out)


def describe(manifest: Manifest) -> str:
    return json.dumps(
        {
            k: getattr(manifest, k)
            for k in ("source", "revision", "precision", "heads", "fused_ops")
        },
        default=str,
    )
