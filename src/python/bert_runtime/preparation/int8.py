"""The int8 step of prepare: calibrate, quantize per row, measure, refuse or return.

See quantize.py for the scheme, calibration.py for the outlier channels it keeps in fp32 and
accuracy_check.py for the check whose figures the manifest records.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import onnx

from bert_runtime.preparation.accuracy_check import Int8Accuracy, check_texts, measure, require
from bert_runtime.preparation.calibration import (
    CALIBRATION_TEXTS,
    channel_ranges,
    outlier_channels,
)
from bert_runtime.preparation.probe import Probe
from bert_runtime.preparation.quantize import quantize_per_row


def quantize_checked(
    model: onnx.ModelProto, tokenizer_json: Path, max_length: int, pad_id: int, workdir: Path
) -> tuple[onnx.ModelProto, Int8Accuracy]:
    """
    The int8 form of the fp32 `model` and its measured accuracy; raises PrecisionRefusedError
    when it misses the check's bounds. `workdir` holds scratch files while it runs.
    """
    scratch = Path(tempfile.mkdtemp(prefix=".int8-", dir=workdir))
    try:
        calibration = Probe.of(CALIBRATION_TEXTS, tokenizer_json, max_length, pad_id)
        outliers = outlier_channels(channel_ranges(model, calibration, scratch))
        quantized = quantize_per_row(model, outliers)
        texts = check_texts(special_tokens(tokenizer_json))
        accuracy = measure(
            model, quantized, Probe.of(texts, tokenizer_json, max_length, pad_id), scratch
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    require(accuracy)
    return quantized, accuracy


def special_tokens(tokenizer_json: Path) -> list[str]:
    """The tokenizer's special tokens ([CLS], <pad>, [MASK], ...), in id order."""
    added = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("added_tokens") or []
    ordered = sorted((t for t in added if t.get("special")), key=lambda t: int(t["id"]))
    return [str(t["content"]) for t in ordered]
