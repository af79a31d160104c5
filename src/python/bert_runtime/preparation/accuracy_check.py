"""prepare's own accuracy check of an int8 model: refuse it rather than serve wrong answers.

The int8 model and the fp32 model it came from run the same built-in texts (empty, short, long,
non-Latin, control characters, the model's own special tokens written out); the pooled embeddings
(first token and mean: every head reads the encoder's last hidden states) must keep cosine
INT8_MIN_COSINE with fp32 on every text, and a text's int8 embedding must not move with its
batch-mates (alone vs all texts in one padded batch: BATCH_MIN_COSINE). The figures go in the
manifest (`accuracy`); below either bound prepare raises PrecisionRefusedError naming fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from bert_runtime.config import Precision
from bert_runtime.errors import PrecisionRefusedError
from bert_runtime.preparation.probe import Probe, cpu_session, run_each, run_together

INT8_MIN_COSINE = 0.99
BATCH_MIN_COSINE = 0.999
_POOLED = ["cls_embedding", "mean_embedding"]

_LONG = (
    "The history of the city goes back more than two thousand years, to a small settlement on "
    "the river where traders met to exchange salt, grain and cloth."
)
# Not the calibration texts (calibration.py): the check measures texts the quantizer never saw.
CHECK_TEXTS = (
    "",
    "a",
    "hello world",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "A man is playing a guitar on stage while the crowd sings along.",
    "The quick brown fox jumps over the lazy dog.",
    "Café naïve résumé, déjà vu, São Paulo, Zürich.",
    "東京は日本の首都です。",
    "Mocквa — cтoлицa Poccии.",
    "tab\tseparated\tvalues\nand a newline",
    "control \x00\x01\x07\x1b[31m characters \x7f",
    "numbers 3.14159 2,718 1e-9 -42 0x1F",
    "https://example.com/path?q=1&r=2 user@example.org",
    "ALL CAPS SHOUTING TEXT!!!",
    " ".join(["repeated"] * 60),
    " ".join([_LONG] * 4),
    " ".join([_LONG] * 16),
)


@dataclass(frozen=True)
class Int8Accuracy:
    """What the check measured, as the manifest records it."""

    min_cosine: float
    mean_cosine: float
    batch_min_cosine: float
    texts: int

    def as_manifest(self) -> dict[str, float]:
        return {
            "int8_vs_fp32_min_cosine": round(self.min_cosine, 6),
            "int8_vs_fp32_mean_cosine": round(self.mean_cosine, 6),
            "int8_alone_vs_batched_min_cosine": round(self.batch_min_cosine, 6),
            "texts": self.texts,
        }


def check_texts(special_tokens: list[str]) -> list[str]:
    """The built-in texts, plus the model's special tokens written out ("<pad>", "[MASK]", ...)."""
    return [*CHECK_TEXTS, " ".join(special_tokens), *(f"a {t} b {t} c" for t in special_tokens)]


def measure(
    fp32: onnx.ModelProto, int8: onnx.ModelProto, probe: Probe, workdir: Path
) -> Int8Accuracy:
    """Cosine of int8 to fp32 per text and pooled output; int8 alone against int8 batched."""
    reference = _each(cpu_session(fp32, workdir / "check_fp32.onnx"), probe)
    session = cpu_session(int8, workdir / "check_int8.onnx")
    alone = _each(session, probe)
    # [texts, outputs, width], as _each gives.
    batched = np.stack(run_together(session, probe, _POOLED), axis=1)
    to_fp32 = _cosines(alone, reference)
    return Int8Accuracy(
        min_cosine=float(to_fp32.min()),
        mean_cosine=float(to_fp32.mean()),
        batch_min_cosine=float(_cosines(alone, batched).min()),
        texts=len(probe.sequences),
    )


def require(accuracy: Int8Accuracy) -> None:
    """Raise PrecisionRefusedError, naming the alternative, when int8 misses a bound."""
    if accuracy.min_cosine >= INT8_MIN_COSINE and accuracy.batch_min_cosine >= BATCH_MIN_COSINE:
        return
    raise PrecisionRefusedError(
        Precision.INT8.value,
        f"its embeddings keep min cosine {accuracy.min_cosine:.4f} to fp32 (needs >= "
        f"{INT8_MIN_COSINE}) and {accuracy.batch_min_cosine:.5f} between a text alone and in a "
        f"batch (needs >= {BATCH_MIN_COSINE}) on {accuracy.texts} built-in texts",
        alternative=Precision.FP32.value,
    )


def _each(session: ort.InferenceSession, probe: Probe) -> np.ndarray:
    """[texts, outputs, width]: the pooled outputs of every text run alone."""
    return np.stack(
        [np.stack([v[0] for v in values]) for values in run_each(session, probe, _POOLED)]
    )


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dot = np.sum(a * b, axis=-1)
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.asarray(dot / np.maximum(norms, 1e-30))
