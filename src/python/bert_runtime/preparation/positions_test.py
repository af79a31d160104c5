"""
RoBERTa, XLM-R and MPNet number positions from the token ids as transformers does: a pad token,
also one written in a text ("a <pad> b"), sits at the padding index and is not counted. Proved on
texts with literal pad tokens against transformers' hidden state of every token (goldens made by
scripts/make_parity_fixtures.py), each text alone and all of them padded into one batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bert_runtime.config import EngineConfig, Pooling
from bert_runtime.manifest import MODEL_NAME
from bert_runtime.preparation.prepare import prepare
from bert_runtime.serving.session import create_session
from bert_runtime.testutil.models import (
    TESTDATA,
    TINY_MPNET_MLM,
    TINY_ROBERTA_MLM,
    fixture_engine,
    goldens,
    padded_batch_vectors,
    with_config,
)

XLM_ROBERTA = {"model_type": "xlm-roberta", "architectures": ["XLMRobertaForMaskedLM"]}
# Golden name, checkpoint, config.json changes (XLM-R: RoBERTa's weights under XLM-R's type).
CASES = [
    ("tiny-roberta-mlm", TINY_ROBERTA_MLM, {}),
    ("tiny-xlm-roberta-mlm", TINY_ROBERTA_MLM, XLM_ROBERTA),
    ("tiny-mpnet-mlm", TINY_MPNET_MLM, {}),
]


def _pad_texts() -> list[str]:
    return list(json.loads((TESTDATA / "goldens.json").read_text())["pad_texts"])


def _prepared(tmp_path: Path, source: Path, changes: dict[str, object]) -> Path:
    if changes:
        source = with_config(tmp_path, source, **changes)
    prepare(str(source), tmp_path / "out")
    return tmp_path / "out"


def _hidden_states(model_dir: Path, sequences: list[np.ndarray]) -> list[np.ndarray]:
    """Every token's last hidden state, the sequences padded into one batch as the engine pads."""
    engine = fixture_engine(model_dir)
    session = create_session(model_dir / MODEL_NAME, EngineConfig())
    names = {i.name for i in session.get_inputs()}
    feeds: dict[str, np.ndarray] = {
        k: v for k, v in engine.pad(sequences).model_inputs().items() if k in names
    }
    if "mask_positions" in names:
        feeds["mask_positions"] = np.zeros((0, 2), np.int64)
        feeds["top_k"] = np.array([1], np.int64)
    (hidden,) = session.run(["last_hidden_state"], feeds)
    return [hidden[row, : len(s)] for row, s in enumerate(sequences)]


@pytest.mark.parametrize(("name", "source", "changes"), CASES, ids=[c[0] for c in CASES])
def test_literal_pad_tokens_take_transformers_positions(
    tmp_path: Path, name: str, source: Path, changes: dict[str, object]
) -> None:
    model_dir = _prepared(tmp_path, source, changes)
    engine = fixture_engine(model_dir)
    gold = goldens()
    texts = _pad_texts()
    sequences = engine.tokenizer.encode(texts)
    for i, ids in enumerate(sequences):
        np.testing.assert_array_equal(ids, gold[f"{name}/pad_input_ids/{i}"])
        assert (ids == engine.tokenizer.pad_id).any(), f"text {i} has no literal pad"
    together = _hidden_states(model_dir, sequences)
    for i, ids in enumerate(sequences):
        expected = gold[f"{name}/pad_last_hidden_state/{i}"]
        (alone,) = _hidden_states(model_dir, [ids])
        assert np.abs(alone - expected).max() <= 1e-4, f"text {i} alone"
        assert np.abs(together[i] - expected).max() <= 1e-4, f"text {i} in a padded batch"


def test_pad_literal_embeddings_are_transformers_mean(tmp_path: Path) -> None:
    """The serving path (tokenizer, padding, mean pooling) on the same texts, MPNet's case."""
    engine = fixture_engine(_prepared(tmp_path, TINY_MPNET_MLM, {}))
    gold = goldens()
    vectors = padded_batch_vectors(engine, _pad_texts(), Pooling.MEAN)
    for i, vector in enumerate(vectors):
        expected = gold[f"tiny-mpnet-mlm/pad_last_hidden_state/{i}"].mean(axis=0)
        assert np.abs(vector - expected).max() <= 1e-4, f"text {i}"
