"""
BERT's relatives on BERT's graph (RoBERTa, DistilBERT, MPNet, ELECTRA): what each must match in
transformers, on its tiny masked-LM and classifier fixtures. What is particular to one relative is
tested in its own module (roberta_test, distilbert_test, mpnet_test, electra_test).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bert_runtime.config import Pooling, Precision
from bert_runtime.serving.engine import Engine
from bert_runtime.testutil.models import (
    check_classification_goldens,
    check_fill_mask_goldens,
    check_hidden_state_goldens,
    fixture_engine,
    goldens,
    padded_batch_vectors,
    prepared_model,
    second_segment_scores,
    texts_for,
)

RELATIVES = ("roberta", "distilbert", "mpnet", "electra")
WITHOUT_TOKEN_TYPES = ("roberta", "distilbert", "mpnet")


def _engine(root: Path, name: str, precision: Precision = Precision.FP32) -> Engine:
    return fixture_engine(prepared_model(root, name, precision.value))


@pytest.mark.parametrize("relative", RELATIVES)
def test_fp32_hidden_states_match_transformers_in_a_padded_batch(root: Path, relative: str) -> None:
    name = f"tiny-{relative}-mlm"
    check_hidden_state_goldens(_engine(root, name), name, texts_for(name))


@pytest.mark.parametrize("relative", RELATIVES)
def test_fp32_fill_mask_matches_transformers(root: Path, relative: str) -> None:
    name = f"tiny-{relative}-mlm"
    for _, result in check_fill_mask_goldens(_engine(root, name), name):
        assert len(result.masks) == 2


@pytest.mark.parametrize("relative", RELATIVES)
def test_fp32_classification_of_texts_and_pairs_matches_transformers(
    root: Path, relative: str
) -> None:
    name = f"tiny-{relative}-cls"
    check_classification_goldens(_engine(root, name), name)


@pytest.mark.parametrize("relative", WITHOUT_TOKEN_TYPES)
def test_a_second_segment_changes_nothing_as_in_transformers(root: Path, relative: str) -> None:
    """
    transformers gives none of these token types: RoBERTa's one row serves both segments,
    DistilBERT and MPNet read zeros, so marking a pair's second text must change nothing.
    """
    plain, marked = second_segment_scores(_engine(root, f"tiny-{relative}-cls"))
    assert plain == pytest.approx(marked, abs=1e-6)


@pytest.mark.parametrize("relative", RELATIVES)
def test_int8_embeddings_stay_close_to_transformers(root: Path, relative: str) -> None:
    name = f"tiny-{relative}-mlm"
    engine = _engine(root, name, Precision.INT8)
    vectors = padded_batch_vectors(engine, texts_for(name), Pooling.MEAN)
    for i, vector in enumerate(vectors):
        expected = goldens()[f"{name}/last_hidden_state/{i}"].mean(axis=0)
        cosine = vector @ expected / (np.linalg.norm(vector) * np.linalg.norm(expected))
        assert cosine >= 0.99, f"text {i}: cosine {cosine:.4f}"
