"""gpu_bench's workloads and model variants: token sequences, mixed lengths, texts, the 2-D mask
graph as it was before issue 29, and parity against the fixtures' transformers hidden states.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import onnx

from bert_runtime.config import Device, EngineConfig, Pooling, Precision
from bert_runtime.manifest import MODEL_NAME
from bert_runtime.preparation.prepare import prepare
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.tasks import Embedding, EmbedRequest

# One fixture per family and head kind, for the placement table (tiny: prepared in a second).
FIXTURES = (
    "tiny-bert",
    "tiny-bert-mlm",
    "tiny-bert-cls",
    "tiny-roberta-cls",
    "tiny-distilbert-cls",
    "tiny-electra-mlm",
    "tiny-mpnet-cls",
    "tiny-modernbert-cls",
)
# The fixtures whose transformers hidden states are in goldens.npz.
PARITY_FIXTURES = (
    "tiny-bert",
    "tiny-roberta-mlm",
    "tiny-distilbert-mlm",
    "tiny-electra-mlm",
    "tiny-mpnet-mlm",
    "tiny-modernbert-mlm",
)
_MASK_SLOT = {"Attention": 3, "MultiHeadAttention": 4}


def prepare_timed(source: str, out: str, device: str, precision: str, packing: bool) -> float:
    """prepare() in a worker process (gpu_bench prepares its variants in parallel): seconds."""
    started = time.perf_counter()
    prepare(
        source, Path(out), device=Device(device), precision=Precision(precision), packing=packing
    )
    return time.perf_counter() - started


def sequences(rng: np.random.Generator, lengths: list[int], vocab: int) -> list[np.ndarray]:
    """Random token ids of the given lengths (ids past the special tokens)."""
    low = min(100, vocab // 2)
    return [rng.integers(low, vocab, size=length, dtype=np.int32) for length in lengths]


def mixed_lengths(rng: np.random.Generator, count: int, longest: int) -> list[int]:
    """engine_bench's mixed workload: 8 + exponential(32), clipped to 8..longest (mean ~40)."""
    drawn = np.clip(np.rint(8 + rng.exponential(32, count)), 8, longest)
    return [int(length) for length in drawn]


def random_texts(rng: np.random.Generator, count: int, words: list[str] | None = None) -> list[str]:
    """Texts of 8-40 words; by default the random model's own words (w0, w1, ...: one token)."""
    vocabulary = words or [f"w{n}" for n in range(20000)]
    picks = [rng.integers(0, len(vocabulary), size=int(rng.integers(8, 41))) for _ in range(count)]
    return [" ".join(vocabulary[i] for i in pick) for pick in picks]


def two_d_mask_copy(prepared: Path, out: Path) -> Path:
    """A copy of a prepared CUDA model whose attention reads the 2-D mask again (as before)."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(prepared, out)
    model = onnx.load(out / MODEL_NAME)
    for node in model.graph.node:
        if node.op_type in _MASK_SLOT and len(node.input) > _MASK_SLOT[node.op_type]:
            node.input[_MASK_SLOT[node.op_type]] = "attention_mask"
    onnx.save(model, out / MODEL_NAME)
    return out


def fixture_parity(
    device: Device, precision: Precision, testdata: Path, workdir: Path
) -> dict[str, tuple[int, float, float] | str]:
    """
    Per parity fixture, prepared for `device` at `precision`: (texts, worst and mean cosine of
    its mean-pooled vectors, one padded batch, against transformers' fp32 hidden states), or
    why it failed (one family's failure leaves the others measured).
    """
    listing = json.loads((testdata / "goldens.json").read_text())
    with np.load(testdata / "goldens.npz") as loaded:
        gold = {name: loaded[name] for name in loaded.files}
    found: dict[str, tuple[int, float, float] | str] = {}
    for name in PARITY_FIXTURES:
        angle = name.startswith(("tiny-roberta", "tiny-mpnet"))
        texts = listing["roberta_texts" if angle else "texts"]
        out = workdir / f"parity-{name}-{device.value}-{precision.value}"
        try:
            cosines = _fixture_cosines(testdata / name, out, device, precision, texts, gold, name)
        except Exception as error:  # any failure: reported in its row
            found[name] = f"failed: {type(error).__name__}: {error}"
            continue
        found[name] = (len(cosines), min(cosines), float(np.mean(cosines)))
    return found


def _fixture_cosines(
    source: Path,
    out: Path,
    device: Device,
    precision: Precision,
    texts: list[str],
    gold: dict[str, np.ndarray],
    name: str,
) -> list[float]:
    prepare(str(source), out, device=device, precision=precision)
    config = EngineConfig(device=device, max_sequence_length=64, strict_device=False)
    engine = Engine(out, config)
    ids = engine.tokenizer.encode(texts)
    request = EmbedRequest(Pooling.MEAN, normalize=False)
    results = engine.run(ids, [request] * len(ids))
    vectors = [r.vector for r in results if isinstance(r, Embedding)]
    cosines = []
    for index, vector in enumerate(vectors):
        expected = gold[f"{name}/last_hidden_state/{index}"].mean(axis=0)
        cosines.append(
            float(vector @ expected / (np.linalg.norm(vector) * np.linalg.norm(expected)))
        )
    return cosines
