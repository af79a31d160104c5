"""Run a graph being prepared on built-in texts: the int8 calibration and accuracy check use it.

Preparation does not import the serving wing, so this is the little of it those two need: the
prepared tokenizer.json (truncated at the model's limit) and an ONNX Runtime CPU session fed only
the inputs the graph takes. Texts run one at a time unless asked otherwise, so no padding enters a
measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from bert_runtime.files import read_tokenizer


@dataclass(frozen=True)
class Probe:
    """Token ids of some texts, and how to pad them for a batch."""

    sequences: list[np.ndarray]
    pad_id: int

    @classmethod
    def of(cls, texts: Sequence[str], tokenizer_json: Path, max_length: int, pad_id: int) -> Probe:
        tokenizer = read_tokenizer(tokenizer_json)
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length)
        encoded = tokenizer.encode_batch(list(texts))
        return cls([np.array(e.ids, np.int32) for e in encoded], pad_id)

    def feeds(self, rows: Sequence[np.ndarray], taken: set[str]) -> dict[str, np.ndarray]:
        """`rows` padded into one batch (attention mask 0 on padding), as inputs of a graph."""
        width = max(len(row) for row in rows)
        ids = np.full((len(rows), width), self.pad_id, np.int32)
        mask = np.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, : len(row)], mask[i, : len(row)] = row, 1
        all_inputs: dict[str, np.ndarray] = {
            "input_ids": ids,
            "attention_mask": mask,
            "token_type_ids": np.zeros_like(ids),
            "mask_positions": np.zeros((0, 2), np.int64),
            "top_k": np.array([1], np.int64),
        }
        return {name: value for name, value in all_inputs.items() if name in taken}


# Protobuf's limit: a larger model's weights go to an external data file beside it.
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Save `model` to `path`, its weights in `<name>.data` beside it when protobuf needs that."""
    external = model.ByteSize() > EXTERNAL_DATA_THRESHOLD
    onnx.save(model, path, save_as_external_data=external, location=f"{path.name}.data")


def cpu_session(model: onnx.ModelProto, path: Path) -> ort.InferenceSession:
    """A CPU session on `model`, saved to `path` first (the caller removes it)."""
    save_model(model, path)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_each(
    session: ort.InferenceSession, probe: Probe, outputs: list[str]
) -> list[list[np.ndarray]]:
    """`outputs` of every text run alone, text by text."""
    taken = {i.name for i in session.get_inputs()}
    return [list(session.run(outputs, probe.feeds([row], taken))) for row in probe.sequences]


def run_together(
    session: ort.InferenceSession, probe: Probe, outputs: list[str]
) -> list[np.ndarray]:
    """`outputs` of all texts padded into one batch."""
    taken = {i.name for i in session.get_inputs()}
    return list(session.run(outputs, probe.feeds(probe.sequences, taken)))
