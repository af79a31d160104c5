"""
The tiny checkpoints and goldens in bert_runtime/testdata, made by scripts/make_parity_fixtures.py.
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import bert_runtime

if TYPE_CHECKING:
    from bert_runtime.config import Pooling
    from bert_runtime.serving.engine import Engine
    from bert_runtime.serving.tasks import Classification, FillMaskResult

TESTDATA = Path(bert_runtime.__file__).parent / "testdata"
TINY_BERT = TESTDATA / "tiny-bert"
TINY_BERT_MLM = TESTDATA / "tiny-bert-mlm"
TINY_BERT_CLS = TESTDATA / "tiny-bert-cls"
# One label, as cross-encoder rerankers have: scored with sigmoid.
TINY_BERT_RERANK = TESTDATA / "tiny-bert-rerank"
# RoBERTa: positions past the padding index, one token type, its own heads, byte-level BPE.
TINY_ROBERTA_MLM = TESTDATA / "tiny-roberta-mlm"
TINY_ROBERTA_CLS = TESTDATA / "tiny-roberta-cls"
# DistilBERT: no token types, no pooler, its own names and heads; the masked-LM one has sinusoidal
# positions. BERT's tokenizer.
TINY_DISTILBERT_MLM = TESTDATA / "tiny-distilbert-mlm"
TINY_DISTILBERT_CLS = TESTDATA / "tiny-distilbert-cls"
# MPNet: RoBERTa's positions and heads, no token types, a relative position bias in attention;
# WordPiece with <s>, </s>, <mask>.
TINY_MPNET_MLM = TESTDATA / "tiny-mpnet-mlm"
TINY_MPNET_CLS = TESTDATA / "tiny-mpnet-cls"
# ELECTRA: the masked-LM one (a generator) projects 16-wide embeddings to its 32-wide layers; the
# classifier is dense + gelu + out_proj. BERT's tokenizer.
TINY_ELECTRA_MLM = TESTDATA / "tiny-electra-mlm"
TINY_ELECTRA_CLS = TESTDATA / "tiny-electra-cls"
# ModernBERT: its own graph (pre-norm, rotary, GeGLU, a global layer then two windowed ones); the
# classifier mean-pools. BERT's tokenizer.
TINY_MODERNBERT_MLM = TESTDATA / "tiny-modernbert-mlm"
TINY_MODERNBERT_CLS = TESTDATA / "tiny-modernbert-cls"
MODEL_NAMES = (
    "tiny-bert",
    "tiny-bert-mlm",
    "tiny-bert-cls",
    "tiny-bert-rerank",
    "tiny-roberta-mlm",
    "tiny-roberta-cls",
    "tiny-distilbert-mlm",
    "tiny-distilbert-cls",
    "tiny-mpnet-mlm",
    "tiny-mpnet-cls",
    "tiny-electra-mlm",
    "tiny-electra-cls",
)
# Not in MODEL_NAMES: the BERT graph's fusion checks do not apply to its graph.
MODERNBERT_NAMES = ("tiny-modernbert-mlm", "tiny-modernbert-cls")
# Saved by sentence-transformers 6: cased tokenizer + do_lower_case, max_seq_length 12, mean
# pooling, two Dense layers, Normalize, prompts with a default (scripts/make_parity_fixtures.py).
TINY_ST = TESTDATA / "tiny-st"


@functools.cache
def _listing() -> dict[str, Any]:
    """goldens.json, read once per process (every golden helper reads it)."""
    listing: dict[str, Any] = json.loads((TESTDATA / "goldens.json").read_text())
    return listing


def golden_long_text(family: str) -> str:
    """The text of goldens.json that fills all 64 positions of `family`'s fixtures."""
    text: str = _listing()[f"{family}_long_text"]
    return text


def golden_texts() -> list[str]:
    return list(_listing()["texts"])


def golden_roberta_texts() -> list[str]:
    """golden_texts() with RoBERTa's (and MPNet's) mask token, <mask>, for [MASK]."""
    return list(_listing()["roberta_texts"])


def texts_for(name: str) -> list[str]:
    """The golden texts written for the fixture `name`'s tokenizer."""
    with_angle_mask = name.startswith(("tiny-roberta", "tiny-mpnet"))
    return golden_roberta_texts() if with_angle_mask else golden_texts()


def golden_token_texts(name: str, index: int) -> list[list[str]]:
    """transformers' fill-mask pipeline's token_str, per mask, of text `index` (goldens.json)."""
    return [list(tokens) for tokens in _listing()[f"{name}/token_str/{index}"]]


def check_fill_mask_goldens(
    engine: Engine, name: str, texts: list[str] | None = None
) -> list[tuple[int, FillMaskResult]]:
    """
    Fill-mask on fixture `name`'s golden texts (or `texts`, indexed as its goldens) that have a
    mask: the masks found, their top ids and scores (to 1e-4) must be transformers'. Returns each
    text's index and result.
    """
    gold = goldens()
    texts = texts if texts is not None else texts_for(name)
    masked = [i for i in range(len(texts)) if f"{name}/top_ids/{i}" in gold]
    assert masked, f"the goldens hold no masked text for {name}"
    results = engine.fill_mask([texts[i] for i in masked], top_k=5)
    for i, result in zip(masked, results, strict=True):
        assert len(result.masks) == len(gold[f"{name}/mask_positions/{i}"])
        ids = [[c.token_id for c in candidates] for candidates in result.masks]
        np.testing.assert_array_equal(ids, gold[f"{name}/top_ids/{i}"])
        scores = [[c.score for c in candidates] for candidates in result.masks]
        np.testing.assert_allclose(scores, gold[f"{name}/top_scores/{i}"], rtol=0, atol=1e-4)
    return list(zip(masked, results, strict=True))


def golden_st_texts() -> list[str]:
    """tiny-st's texts: golden_texts() and a long, mixed-case one."""
    return list(_listing()["st_texts"])


def golden_pairs() -> list[tuple[str, str]]:
    return [(first, second) for first, second in _listing()["pairs"]]


@functools.cache
def _golden_arrays() -> dict[str, np.ndarray]:
    """goldens.npz, loaded once per process; read-only, since every caller shares the arrays."""
    with np.load(TESTDATA / "goldens.npz") as loaded:
        arrays = {name: loaded[name] for name in loaded.files}
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


def goldens() -> dict[str, np.ndarray]:
    return dict(_golden_arrays())


def fixture_engine(path: Path) -> Engine:
    """An engine on a prepared tiny fixture, long enough (64 tokens) for every golden text."""
    from bert_runtime.config import EngineConfig
    from bert_runtime.serving.engine import Engine

    return Engine(path, EngineConfig(max_sequence_length=64))


def prepared_model(root: Path, name: str = "tiny-bert", precision: str = "fp32") -> Path:
    """Prepare a tiny checkpoint under `root` once, for CPU; returns the prepared directory."""
    # Imported here: the preparation wing is heavy and only this helper needs it.
    from bert_runtime.config import Precision
    from bert_runtime.preparation.prepare import prepare

    out = root / f"{name}-{precision}"
    if not out.exists():
        prepare(str(TESTDATA / name), out, precision=Precision(precision))
    return out


def with_config(root: Path, source: Path, **changes: object) -> Path:
    """A copy of checkpoint `source` under `root` whose config.json has `changes` applied."""
    copy = root / f"{source.name}-changed"
    shutil.copytree(source, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, **changes}))
    return copy


def with_vocabulary_files_only(checkpoint: Path) -> Path:
    """
    Turn checkpoint directory `checkpoint` into one saved before tokenizer.json: its tokenizer's
    vocabulary written as vocab.txt (WordPiece) or vocab.json + merges.txt (BPE), tokenizer.json
    removed. Returns `checkpoint`.
    """
    model = json.loads((checkpoint / "tokenizer.json").read_text())["model"]
    vocab: dict[str, int] = model["vocab"]
    if model["type"] == "BPE":
        (checkpoint / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        merges = "".join(f"{left} {right}\n" for left, right in model["merges"])
        (checkpoint / "merges.txt").write_text(f"#version: 0.2\n{merges}")
    else:
        in_id_order = sorted(vocab, key=lambda token: vocab[token])
        (checkpoint / "vocab.txt").write_text("\n".join(in_id_order) + "\n")
    (checkpoint / "tokenizer.json").unlink()
    return checkpoint


def padded_batch_vectors(engine: Engine, texts: list[str], pooling: Pooling) -> list[np.ndarray]:
    """Every text's unnormalized vector from one padded batch: padding sits beside the shorter."""
    from bert_runtime.serving.tasks import Embedding, EmbedRequest

    sequences = engine.tokenizer.encode(texts)
    results = engine.run(sequences, [EmbedRequest(pooling, normalize=False)] * len(sequences))
    return [r.vector for r in results if isinstance(r, Embedding)]


def score_rows(results: list[Classification]) -> np.ndarray:
    """Classification results as a [texts, labels] array, in the head's label order."""
    return np.array([list(r.scores.values()) for r in results])


def check_token_id_goldens(engine: Engine, texts: list[str], key: str) -> None:
    """Each of `texts` must tokenize to transformers' ids, goldens.npz's `key/<index>`."""
    gold = goldens()
    for index, ids in enumerate(engine.tokenizer.encode(texts)):
        np.testing.assert_array_equal(ids, gold[f"{key}/{index}"])


def check_hidden_state_goldens(engine: Engine, name: str, texts: list[str]) -> None:
    """
    `texts` in one padded batch: each one's first-token and mean vectors must be fixture `name`'s
    transformers hidden states (to 1e-4), padding beside every shorter text.
    """
    from bert_runtime.config import Pooling

    gold = goldens()
    first = padded_batch_vectors(engine, texts, Pooling.CLS)
    mean = padded_batch_vectors(engine, texts, Pooling.MEAN)
    assert len(first) == len(mean) == len(texts)
    for i in range(len(texts)):
        hidden = gold[f"{name}/last_hidden_state/{i}"]
        assert np.abs(first[i] - hidden[0]).max() <= 1e-4, f"text {i}: first token"
        assert np.abs(mean[i] - hidden.mean(axis=0)).max() <= 1e-4, f"text {i}: mean"


def check_classification_goldens(engine: Engine, name: str) -> None:
    """Fixture `name`'s texts and the golden pairs: transformers' probabilities, to 1e-4."""
    gold = goldens()
    texts, pairs = texts_for(name), golden_pairs()
    for key, results in (
        ("probabilities", engine.classify(texts)),
        ("pair_probabilities", engine.classify_pairs(pairs)),
    ):
        found = score_rows(results)
        assert len(found) == len(pairs if key.startswith("pair") else texts)
        for i, row in enumerate(found):
            assert np.abs(row - gold[f"{name}/{key}/{i}"]).max() <= 1e-4, f"{key} {i}"


def second_segment_scores(engine: Engine) -> tuple[dict[str, float], dict[str, float]]:
    """One text's class scores, plain and with its tail marked as a second segment (type 1)."""
    from bert_runtime.serving.tasks import Classification, ClassifyRequest

    (ids,) = engine.tokenizer.encode(["the cat sat on the mat and the dog sat on the rug"])
    plain, marked = engine.run([ids, ids], [ClassifyRequest(), ClassifyRequest(5)])
    assert isinstance(plain, Classification) and isinstance(marked, Classification)
    return plain.scores, marked.scores


def sentence_transformers_layout(
    root: Path,
    pooling: dict[str, bool],
    modules: list[str] | None = None,
    extra_files: Mapping[str, object] | None = None,
) -> Path:
    """
    tiny-bert laid out as sentence-transformers saves a model (modules.json, 1_Pooling), under
    `root`/source, with `extra_files` (name -> JSON content) beside it.
    """
    source = root / "source"
    shutil.copytree(TINY_BERT, source)
    kinds = modules or ["Transformer", "Pooling"]
    listing = [
        {
            "idx": i,
            "name": str(i),
            "path": "" if kind == "Transformer" else f"{i}_{kind}",
            "type": f"sentence_transformers.models.{kind}",
        }
        for i, kind in enumerate(kinds)
    ]
    (source / "modules.json").write_text(json.dumps(listing))
    (source / "1_Pooling").mkdir()
    settings = {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, **pooling}
    (source / "1_Pooling" / "config.json").write_text(json.dumps(settings))
    for name, content in (extra_files or {}).items():
        (source / name).write_text(json.dumps(content))
    return source


TANH = "torch.nn.modules.activation.Tanh"


def write_dense(
    folder: Path, weight: np.ndarray, bias: np.ndarray | None, activation: str = TANH
) -> None:
    """A sentence-transformers Dense module's folder: config.json and model.safetensors."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    out_features, in_features = weight.shape
    settings = {
        "in_features": in_features,
        "out_features": out_features,
        "bias": bias is not None,
        "activation_function": activation,
    }
    (folder / "config.json").write_text(json.dumps(settings))
    tensors = {"linear.weight": weight.astype(np.float32)}
    if bias is not None:
        tensors["linear.bias"] = bias.astype(np.float32)
    save_file(tensors, str(folder / "model.safetensors"))
