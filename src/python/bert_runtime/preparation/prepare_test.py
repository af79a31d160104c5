"""
Preparation: parity with Hugging Face transformers, fusions, precision variants, atomicity, errors.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from safetensors.numpy import load_file, save_file

from bert_runtime.config import Device, EngineConfig, Pooling, Precision
from bert_runtime.errors import (
    ConfigError,
    InputError,
    MissingModelFilesError,
    MissingTensorsError,
    ModelSourceError,
    UnsupportedModelError,
)
from bert_runtime.files import sha256_file
from bert_runtime.manifest import MODEL_NAME, read_manifest
from bert_runtime.preparation import cli
from bert_runtime.preparation.model_config import read_config
from bert_runtime.preparation.prepare import prepare
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.session import create_session, session_options
from bert_runtime.serving.tasks import (
    Embedding,
    EmbedRequest,
)
from bert_runtime.testutil.models import (
    MODEL_NAMES,
    MODERNBERT_NAMES,
    TANH,
    TESTDATA,
    TINY_BERT,
    TINY_ELECTRA_MLM,
    TINY_ST,
    check_classification_goldens,
    check_fill_mask_goldens,
    check_hidden_state_goldens,
    check_token_id_goldens,
    fixture_engine,
    golden_pairs,
    golden_st_texts,
    golden_texts,
    goldens,
    padded_batch_vectors,
    prepared_model,
    sentence_transformers_layout,
    texts_for,
    with_config,
    with_vocabulary_files_only,
    write_dense,
)

LAYERS = 2


def test_tokenizer_ids_match_transformers(root: Path) -> None:
    engine = fixture_engine(prepared_model(root, "tiny-bert"))
    check_token_id_goldens(engine, golden_texts(), "input_ids")


def test_fp32_embeddings_match_transformers(root: Path) -> None:
    engine = fixture_engine(prepared_model(root, "tiny-bert"))
    check_hidden_state_goldens(engine, "tiny-bert", golden_texts())


def test_fp32_pooler_output_matches_transformers(root: Path) -> None:
    engine = fixture_engine(prepared_model(root, "tiny-bert"))
    sequences = engine.tokenizer.encode(golden_texts())
    (pooled,) = engine._infer(engine.pad(sequences), ["pooler_output"])
    for i in range(len(sequences)):
        assert np.abs(pooled[i] - goldens()[f"tiny-bert/pooler_output/{i}"]).max() <= 1e-4


def test_fp32_fill_mask_matches_transformers(root: Path) -> None:
    engine = fixture_engine(prepared_model(root, "tiny-bert-mlm"))
    assert check_fill_mask_goldens(engine, "tiny-bert-mlm")


def test_fp32_classification_matches_transformers(root: Path) -> None:
    engine = fixture_engine(prepared_model(root, "tiny-bert-cls"))
    check_classification_goldens(engine, "tiny-bert-cls")
    labels = ["negative", "neutral", "positive"]
    for i, result in enumerate(engine.classify(golden_texts())):
        assert list(result.scores) == labels
        assert result.label == labels[int(np.argmax(goldens()[f"tiny-bert-cls/probabilities/{i}"]))]


def test_pairs_are_encoded_with_token_types_as_transformers_does(root: Path) -> None:
    engine = fixture_engine(prepared_model(root, "tiny-bert-cls"))
    gold = goldens()
    pairs = golden_pairs()
    for i, (ids, start) in enumerate(engine.tokenizer.encode_pairs(pairs)):
        assert ids.tolist() == gold[f"pair_input_ids/{i}"].tolist()
        type_ids = gold[f"pair_token_type_ids/{i}"]
        assert start == (int(np.argmax(type_ids)) if type_ids.any() else 0)
    # The second text's token types matter: read as one text, a pair scores differently.
    (as_pair,) = engine.classify_pairs(pairs[:1])
    (as_one_text,) = engine.classify([" ".join(pairs[0])])
    assert max(abs(as_one_text.scores[k] - as_pair.scores[k]) for k in as_pair.scores) > 1e-3


def test_classification_logits_are_those_the_scores_come_from(root: Path) -> None:
    engine = fixture_engine(prepared_model(root, "tiny-bert-cls"))
    assert engine.num_labels == 3
    assert fixture_engine(prepared_model(root, "tiny-bert")).num_labels == 0
    (result,) = engine.classify(["good day"])
    logits = np.array(list(result.logits.values()))
    softmax = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert list(result.logits) == list(result.scores) == ["negative", "neutral", "positive"]
    np.testing.assert_allclose(softmax, list(result.scores.values()), atol=1e-6)


def test_a_directory_prepared_before_class_logits_still_classifies(
    root: Path, tmp_path: Path
) -> None:
    old = tmp_path / "old"
    shutil.copytree(prepared_model(root, "tiny-bert-cls"), old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["outputs"].remove("class_logits")
    for key in ("pooling", "normalize"):  # not recorded back then either
        del manifest[key]
    (old / "manifest.json").write_text(json.dumps(manifest))
    (result,) = fixture_engine(old).classify(["good day"])
    assert result.logits == {} and set(result.scores) == {"negative", "neutral", "positive"}
    assert fixture_engine(old).embed(["good day"]).shape == (1, 32)


def test_single_logit_reranker_is_scored_as_transformers_pipeline_does(
    root: Path,
) -> None:
    """A cross-encoder has one logit: the pipeline applies sigmoid (softmax of one is always 1)."""
    path = prepared_model(root, "tiny-bert-rerank")
    assert read_manifest(path).extra == {"class_scores": "sigmoid"}
    engine = fixture_engine(path)
    assert engine.num_labels == 1
    gold = goldens()
    pairs = golden_pairs()
    for kind, results in (
        ("", engine.classify(golden_texts())),
        ("pair_", engine.classify_pairs(pairs)),
    ):
        for i, result in enumerate(results):
            assert result.label == "LABEL_0"
            assert abs(result.score - gold[f"tiny-bert-rerank/{kind}scores/{i}"][0]) <= 1e-4
            logit = gold[f"tiny-bert-rerank/{kind}logits/{i}"][0]
            assert abs(result.logits["LABEL_0"] - logit) <= 1e-4
    # Different pairs get different scores (they would all be 1.0 under softmax).
    scores = [r.score for r in engine.classify_pairs(pairs)]
    assert max(scores) - min(scores) > 1e-3


@pytest.mark.parametrize(
    ("name", "problem_type", "expected"),
    [
        ("tiny-bert-cls", "multi_label_classification", "sigmoid"),
        ("tiny-bert-cls", "single_label_classification", "softmax"),
        ("tiny-bert-rerank", "regression", "identity"),
    ],
)
def test_problem_type_picks_the_score_function(
    tmp_path: Path, name: str, problem_type: str, expected: str
) -> None:
    source = tmp_path / "source"
    shutil.copytree(TESTDATA / name, source)
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "problem_type": problem_type}))
    prepare(str(source), tmp_path / "out")
    assert read_manifest(tmp_path / "out").extra == {"class_scores": expected}
    for result in fixture_engine(tmp_path / "out").classify(golden_texts()):
        logits = np.array(list(result.logits.values()))
        applied = {
            "sigmoid": 1 / (1 + np.exp(-logits)),
            "softmax": np.exp(logits) / np.exp(logits).sum(),
            "identity": logits,
        }[expected]
        np.testing.assert_allclose(list(result.scores.values()), applied, atol=1e-6)


def test_unknown_problem_type_is_named(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(TESTDATA / "tiny-bert-cls", source)
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "problem_type": "ranking"}))
    with pytest.raises(UnsupportedModelError, match="problem_type 'ranking' is not supported"):
        prepare(str(source), tmp_path / "out")


def test_a_sentence_transformers_models_pooling_is_its_default(tmp_path: Path) -> None:
    source = sentence_transformers_layout(tmp_path, {"pooling_mode_cls_token": True})
    prepare(str(source), tmp_path / "out")
    manifest = read_manifest(tmp_path / "out")
    assert (manifest.pooling, manifest.normalize) == (Pooling.CLS, False)  # no Normalize module
    engine = fixture_engine(tmp_path / "out")
    vectors = engine.embed(golden_texts())
    for i, vector in enumerate(vectors):
        # sentence-transformers' CLS pooling is the first token's hidden state, unnormalized.
        gold = goldens()[f"tiny-bert/last_hidden_state/{i}"][0]
        assert np.abs(vector - gold).max() <= 1e-4
    # A request that names its own pooling still gets it.
    mean = engine.embed(golden_texts(), EmbedRequest(Pooling.MEAN, normalize=False))
    for i, vector in enumerate(mean):
        gold = goldens()[f"tiny-bert/last_hidden_state/{i}"].mean(axis=0)
        assert np.abs(vector - gold).max() <= 1e-4


def test_a_normalize_module_makes_embeddings_unit_length(tmp_path: Path) -> None:
    modules = ["Transformer", "Pooling", "Normalize"]
    source = sentence_transformers_layout(tmp_path, {"pooling_mode_mean_tokens": True}, modules)
    prepare(str(source), tmp_path / "out")
    manifest = read_manifest(tmp_path / "out")
    assert (manifest.pooling, manifest.normalize) == (Pooling.MEAN, True)
    vectors = fixture_engine(tmp_path / "out").embed(golden_texts())
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("pooling", "modules", "message"),
    [
        ({"pooling_mode_max_tokens": True}, None, "asks for pooling_mode_max_tokens"),
        ({"pooling_mode": "lasttoken"}, None, "asks for pooling_mode 'lasttoken'"),
        (
            {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": True},
            None,
            "pooling_mode_cls_token + pooling_mode_mean_tokens",
        ),
        (
            {"pooling_mode_mean_tokens": True},
            ["Transformer", "Pooling", "Asym", "Normalize"],
            "lists sentence_transformers.models.Asym, which bert_runtime does not apply",
        ),
        (
            {"pooling_mode_mean_tokens": True},
            ["Transformer", "Normalize", "Pooling"],
            "orders its modules Transformer -> Normalize -> Pooling",
        ),
    ],
)
def test_sentence_transformers_modules_it_cannot_apply_are_refused(
    tmp_path: Path, pooling: dict[str, bool], modules: list[str] | None, message: str
) -> None:
    source = sentence_transformers_layout(tmp_path, pooling, modules)
    with pytest.raises(UnsupportedModelError, match=re.escape(message)):
        prepare(str(source), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _dense_layout(tmp_path: Path, layers: list[tuple[np.ndarray, np.ndarray | None, str]]) -> Path:
    """tiny-bert with mean pooling, the given Dense layers (from 2_Dense on) and Normalize."""
    kinds = ["Transformer", "Pooling", *["Dense"] * len(layers), "Normalize"]
    source = sentence_transformers_layout(tmp_path, {"pooling_mode_mean_tokens": True}, kinds)
    for index, (weight, bias, activation) in enumerate(layers):
        write_dense(source / f"{index + 2}_Dense", weight, bias, activation)
    return source


def test_dense_layers_project_the_pooled_vector_as_sentence_transformers_does(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(7)
    w1, b1 = rng.normal(0, 0.3, (16, 32)), rng.normal(0, 0.1, 16)
    w2 = rng.normal(0, 0.3, (8, 16))
    identity = "torch.nn.modules.linear.Identity"
    source = _dense_layout(tmp_path, [(w1, b1, TANH), (w2, None, identity)])
    prepare(str(source), tmp_path / "out")
    manifest = read_manifest(tmp_path / "out")
    assert (manifest.hidden_size, manifest.embedding_size) == (32, 8)
    assert {"2_Dense/model.safetensors", "3_Dense/config.json"} <= set(manifest.input_sha256)
    projected, plain = fixture_engine(tmp_path / "out"), fixture_engine(
        prepared_model(tmp_path, "tiny-bert")
    )
    texts = golden_texts()
    for pooling in (Pooling.MEAN, Pooling.CLS):  # a requested pooling goes through them too
        raw = EmbedRequest(pooling, normalize=False)
        pooled = plain.embed(texts, raw).astype(np.float64)
        expected = np.tanh(pooled @ w1.T + b1) @ w2.T
        np.testing.assert_allclose(projected.embed(texts, raw), expected, atol=1e-5)
    unit = projected.embed(texts)  # the model's default: mean, Dense, Normalize
    expected = np.tanh(plain.embed(texts, EmbedRequest(Pooling.MEAN, False)) @ w1.T + b1) @ w2.T
    np.testing.assert_allclose(
        unit, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5
    )


@pytest.mark.parametrize(
    ("problem", "error", "message"),
    [
        ("relu", UnsupportedModelError, "activation_function 'torch.nn.modules.activation.ReLU'"),
        ("pickled", MissingModelFilesError, "only pytorch_model.bin found"),
        (
            "config shape",
            ModelSourceError,
            "linear.weight is [16, 32], its config says [out_features, in_features] = [16, 30]",
        ),
        ("width", ModelSourceError, "Dense layer 0 takes 30 values, but gets 32"),
    ],
)
def test_dense_layers_it_cannot_apply_are_refused(
    tmp_path: Path, problem: str, error: type[Exception], message: str
) -> None:
    width = 30 if problem == "width" else 32
    weight = np.ones((16, width))
    activation = "torch.nn.modules.activation.ReLU" if problem == "relu" else TANH
    source = _dense_layout(tmp_path, [(weight, None, activation)])
    folder = source / "2_Dense"
    if problem == "pickled":
        (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    if problem == "config shape":
        settings = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**settings, "in_features": 30}))
    with pytest.raises(error, match=re.escape(message)):
        prepare(str(source), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_malformed_modules_json_is_a_clear_error(tmp_path: Path) -> None:
    source = sentence_transformers_layout(tmp_path, {"pooling_mode_mean_tokens": True})
    (source / "modules.json").write_text('{"0": "Transformer"}')
    with pytest.raises(ModelSourceError, match="modules.json is not a list of typed modules"):
        prepare(str(source), tmp_path / "out")


@pytest.mark.parametrize("prompt_name", [None, "query", "passage"])
def test_a_sentence_transformers_model_embeds_as_sentence_transformers_encode_does(
    tmp_path: Path, prompt_name: str | None
) -> None:
    """tiny-st as sentence-transformers 6 saved it: every setting it has, against its encode."""
    manifest = prepare(str(TINY_ST), tmp_path / "out")
    assert (manifest.max_sequence_length, manifest.embedding_size) == (12, 8)
    engine = Engine(tmp_path / "out", EngineConfig(max_sequence_length=64))
    vectors = engine.embed(golden_st_texts(), prompt_name=prompt_name)
    gold = goldens()[f"tiny-st/embeddings/{prompt_name or 'default'}"]
    assert np.abs(vectors - gold).max() <= 1e-5


def test_sentence_transformers_max_seq_length_is_the_models_input_limit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = sentence_transformers_layout(tmp_path, {"pooling_mode_mean_tokens": True})
    (source / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 8, "do_lower_case": False})
    )
    prepare(str(source), tmp_path / "out")
    assert read_manifest(tmp_path / "out").max_sequence_length == 8
    # A server asking for more gets the model's 8, as sentence-transformers would cut there.
    with caplog.at_level(logging.WARNING, logger="bert_runtime.serving.engine"):
        capped = Engine(tmp_path / "out", EngineConfig(max_sequence_length=64))
    assert capped.max_length == 8
    assert "max_sequence_length 64 is more than" in caplog.text
    assert "its limit is 8 tokens" in caplog.text
    long_text = "the quick brown fox jumps over the lazy dog and the cat sat on the mat"
    request = EmbedRequest(Pooling.MEAN, normalize=False)
    plain = tmp_path / "plain"
    prepare(str(TINY_BERT), plain)
    cut_by_hand = Engine(plain, EngineConfig(max_sequence_length=8)).embed([long_text], request)
    uncut = fixture_engine(plain).embed([long_text], request)
    got = capped.embed([long_text], request)
    np.testing.assert_array_equal(got, cut_by_hand)
    assert np.abs(got - uncut).max() > 1e-3


@pytest.mark.parametrize(
    ("settings", "expected"),
    [({"max_seq_length": 512}, 64), ({"do_lower_case": False}, 64), ({"max_seq_length": 16}, 16)],
)
def test_sentence_bert_config_longer_than_the_positions_or_silent_keeps_them(
    tmp_path: Path, settings: dict[str, object], expected: int
) -> None:
    source = sentence_transformers_layout(tmp_path, {"pooling_mode_mean_tokens": True})
    (source / "sentence_bert_config.json").write_text(json.dumps(settings))
    prepare(str(source), tmp_path / "out")
    assert read_manifest(tmp_path / "out").max_sequence_length == expected


def test_do_lower_case_lowercases_texts_before_a_cased_tokenizer(tmp_path: Path) -> None:
    source = sentence_transformers_layout(tmp_path, {"pooling_mode_mean_tokens": True})
    tokenizer = json.loads((source / "tokenizer.json").read_text())
    tokenizer["normalizer"]["lowercase"] = False  # a cased model's tokenizer
    (source / "tokenizer.json").write_text(json.dumps(tokenizer))
    prepare(str(source), tmp_path / "cased")
    (source / "sentence_bert_config.json").write_text('{"do_lower_case": true}')
    prepare(str(source), tmp_path / "lowered")
    cased = fixture_engine(tmp_path / "cased").tokenizer
    lowered = fixture_engine(tmp_path / "lowered").tokenizer
    unknown = cased.encode(["Hello World"])[0].tolist()
    assert unknown[1:3] == [1, 1]  # [UNK] [UNK]: the vocabulary is lowercase
    # As sentence-transformers feeds it "hello world"; the tokenizer's own normalizer still runs.
    expected = cased.encode(["hello world"])[0].tolist()
    assert lowered.encode(["Hello World"])[0].tolist() == expected
    assert (
        lowered.encode(["HÉLLO\tworld"])[0].tolist() == cased.encode(["héllo\tworld"])[0].tolist()
    )


PROMPTS = {"prompts": {"query": "hello ", "passage": ""}, "default_prompt_name": "query"}


def test_prompts_are_put_in_front_and_the_default_is_used_unnamed(tmp_path: Path) -> None:
    extra = {"config_sentence_transformers.json": PROMPTS}
    source = sentence_transformers_layout(tmp_path, {"pooling_mode_mean_tokens": True}, None, extra)
    prepare(str(source), tmp_path / "out")
    manifest = read_manifest(tmp_path / "out")
    assert manifest.prompts == PROMPTS["prompts"]
    assert manifest.default_prompt_name == "query"
    prompted, plain = fixture_engine(tmp_path / "out"), fixture_engine(
        prepared_model(tmp_path, "tiny-bert")
    )
    texts = ["the cat sat", "good day"]
    mean = EmbedRequest(Pooling.MEAN, normalize=False)  # the layout's; the plain model normalizes
    # As sentence-transformers: the prompt's text in front of each text, then the usual model.
    expected = plain.embed(["hello " + t for t in texts], mean)
    np.testing.assert_array_equal(prompted.embed(texts), expected)
    np.testing.assert_array_equal(prompted.embed(texts, mean, "query"), expected)
    np.testing.assert_array_equal(prompted.embed(texts, mean, "passage"), plain.embed(texts, mean))
    with pytest.raises(InputError, match="unknown prompt_name 'doc': .* 'passage', 'query'"):
        prompted.embed(texts, prompt_name="doc")
    with pytest.raises(InputError, match="this model's prompts are none"):
        plain.embed(texts, prompt_name="query")


MEAN = {"pooling_mode_mean_tokens": True}


@pytest.mark.parametrize(
    ("pooling", "settings", "error", "message"),
    [
        (MEAN, {"prompts": ["query: "]}, ModelSourceError, "prompts must map names to text"),
        (
            MEAN,
            {"prompts": {"query": "q: "}, "default_prompt_name": "doc"},
            ModelSourceError,
            "default_prompt_name 'doc' is not one of its prompts (query)",
        ),
        (
            {**MEAN, "include_prompt": False},
            {"prompts": {"query": "q: "}},
            UnsupportedModelError,
            "averages without the prompt's tokens (include_prompt false)",
        ),
    ],
)
def test_prompt_settings_it_cannot_follow_are_refused(
    tmp_path: Path,
    pooling: dict[str, bool],
    settings: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    extra = {"config_sentence_transformers.json": settings}
    source = sentence_transformers_layout(tmp_path, pooling, None, extra)
    with pytest.raises(error, match=re.escape(message)):
        prepare(str(source), tmp_path / "out")


def test_cls_pooling_without_the_prompts_tokens_is_the_same_and_accepted(tmp_path: Path) -> None:
    extra = {"config_sentence_transformers.json": PROMPTS}
    pooling = {"pooling_mode_cls_token": True, "include_prompt": False}
    source = sentence_transformers_layout(tmp_path, pooling, None, extra)
    assert prepare(str(source), tmp_path / "out").pooling is Pooling.CLS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"max_seq_length": "256"}', "max_seq_length must be an integer >= 2, got '256'"),
        ('{"max_seq_length": true}', "max_seq_length must be an integer >= 2, got True"),
        ("[256]", "sentence_bert_config.json is not a JSON object"),
        ('{"do_lower_case": "yes"}', "do_lower_case must be true or false, got 'yes'"),
    ],
)
def test_a_malformed_sentence_bert_config_is_a_clear_error(
    tmp_path: Path, text: str, message: str
) -> None:
    source = sentence_transformers_layout(tmp_path, {"pooling_mode_mean_tokens": True})
    (source / "sentence_bert_config.json").write_text(text)
    with pytest.raises(ModelSourceError, match=re.escape(message)):
        prepare(str(source), tmp_path / "out")


def test_a_pooling_config_that_is_not_an_object_is_a_clear_error(tmp_path: Path) -> None:
    source = sentence_transformers_layout(tmp_path, {"pooling_mode_mean_tokens": True})
    (source / "1_Pooling" / "config.json").write_text('["mean"]')
    with pytest.raises(ModelSourceError, match=r"1_Pooling/config\.json is not a JSON object"):
        prepare(str(source), tmp_path / "out")


def test_a_model_without_sentence_transformers_files_pools_mean_normalized(
    root: Path,
) -> None:
    manifest = read_manifest(prepared_model(root, "tiny-bert"))
    assert (manifest.pooling, manifest.normalize) == (Pooling.MEAN, True)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_optimizer_fusions_happened(root: Path, name: str) -> None:
    path = prepared_model(root, name)
    ops = [node.op_type for node in onnx.load(path / MODEL_NAME).graph.node]
    config = read_config(TESTDATA / name / "config.json")
    heads = read_manifest(path).heads
    classifier = config.first_token_classifier
    # The masked-LM head's transform has a gelu and a norm; ELECTRA's classifier a gelu.
    heads_norm = 1 if "fill-mask" in heads else 0
    gelu_classifier = "classification" in heads and classifier and classifier.activation == "gelu"
    heads_gelu = heads_norm + (1 if gelu_classifier else 0)
    # MPNet's attention (with its position bias) is MultiHeadAttention after a QKV MatMul.
    attention = "MultiHeadAttention" if config.relative_attention_buckets else "Attention"
    assert ops.count("EmbedLayerNormalization") == 1
    assert ops.count(attention) == LAYERS
    # On CPU the residual Add and LayerNormalization stay apart: ONNX Runtime's CPU
    # SkipLayerNormalization is slower than the two (optimize.py).
    assert ops.count("SkipLayerNormalization") == 0
    assert ops.count("LayerNormalization") == 2 * LAYERS + heads_norm
    assert ops.count("BiasGelu") == LAYERS + heads_gelu
    assert "Gelu" not in ops
    assert read_manifest(path).fused_ops[attention] == LAYERS


def test_cpu_sessions_do_not_fuse_layer_norms_back(root: Path, tmp_path: Path) -> None:
    """ONNX Runtime's own SkipLayerNormFusion would undo what optimize.py leaves apart."""
    options = session_options(EngineConfig())
    options.optimized_model_filepath = str(tmp_path / "as_run.onnx")
    create_session(prepared_model(root, "tiny-bert") / MODEL_NAME, EngineConfig(), options)
    ops = [node.op_type for node in onnx.load(tmp_path / "as_run.onnx").graph.node]
    assert ops.count("LayerNormalization") == 2 * LAYERS
    assert "SkipLayerNormalization" not in ops


def test_int8_embeddings_stay_close_to_transformers(root: Path) -> None:
    engine = fixture_engine(prepared_model(root, "tiny-bert", "int8"))
    ops = [
        node.op_type
        for node in onnx.load(prepared_model(root, "tiny-bert", "int8") / MODEL_NAME).graph.node
    ]
    # Every layer's six projections, per row (quantize.py); nothing per tensor. Q, K and V
    # share one quantized input and need no Split; int8 runs in 512-token batches on CPU.
    assert ops.count("MatMulIntegerToFloat") == 6 * LAYERS
    assert ops.count("QuantizeLinear") == 4 * LAYERS
    assert "Split" not in ops
    assert not {"QAttention", "DynamicQuantizeMatMul", "DynamicQuantizeLinear"} & set(ops)
    assert engine.planner.budget.max_tokens == 512
    gold = goldens()
    for i, vector in enumerate(padded_batch_vectors(engine, golden_texts(), Pooling.MEAN)):
        reference = gold[f"tiny-bert/last_hidden_state/{i}"].mean(axis=0)
        cosine = float(vector @ reference / np.linalg.norm(vector) / np.linalg.norm(reference))
        assert cosine >= 0.99, f"text {i}: cosine {cosine:.4f}"


@pytest.mark.parametrize("batch_tokens", [None, 64])
def test_int8_result_does_not_depend_on_its_batch_mates(
    root: Path, batch_tokens: int | None
) -> None:
    """
    Every token gets its own activation scale, so a text's int8 result is its own alone, in one
    batch of other texts, and in the batches a direct call plans (small ones with a 64-token
    budget), up to float rounding (as fp32's is).
    """
    path = prepared_model(root, "tiny-bert", "int8")
    engine = Engine(path, EngineConfig(max_sequence_length=64, max_batch_tokens=batch_tokens))
    texts = [*golden_texts(), " ".join(["the quick brown fox jumps over the lazy dog"] * 6)]
    sequences = engine.tokenizer.encode(texts)
    request = EmbedRequest(Pooling.MEAN, normalize=False)
    together = engine.run(sequences, [request] * len(sequences))
    planned = engine.embed(texts, request)
    for i, (sequence, batched) in enumerate(zip(sequences, together, strict=True)):
        (alone,) = engine.run([sequence], [request])
        assert isinstance(alone, Embedding) and isinstance(batched, Embedding)
        np.testing.assert_allclose(alone.vector, batched.vector, atol=1e-5, err_msg=f"text {i}")
        np.testing.assert_allclose(alone.vector, planned[i], atol=1e-5, err_msg=f"text {i}")


def test_int8_fill_mask_keeps_the_top_token(root: Path) -> None:
    engine = fixture_engine(prepared_model(root, "tiny-bert-mlm", "int8"))
    (result,) = engine.fill_mask([golden_texts()[3]], top_k=1)
    tops = [candidates[0].token_id for candidates in result.masks]
    assert tops == goldens()["tiny-bert-mlm/top_ids/3"][:, 0].tolist()


def test_fp16_model_keeps_fp32_interface_and_is_refused_on_cpu(tmp_path: Path) -> None:
    out = tmp_path / "fp16"
    manifest = prepare(str(TINY_BERT), out, device=Device.CUDA, precision=Precision.FP16)
    model = onnx.load(out / MODEL_NAME)
    # On CUDA the residual Add + LayerNormalization are one fused kernel.
    assert manifest.fused_ops["SkipLayerNormalization"] == 2 * LAYERS
    assert {i.type.tensor_type.elem_type for i in model.graph.input} == {onnx.TensorProto.INT32}
    assert {o.type.tensor_type.elem_type for o in model.graph.output} == {onnx.TensorProto.FLOAT}
    weights = {i.name: i.data_type for i in model.graph.initializer}
    assert weights["word_embeddings"] == onnx.TensorProto.FLOAT16
    assert manifest.precision is Precision.FP16
    with pytest.raises(ConfigError, match="fp16 is not supported on cpu"):
        Engine(out)


@pytest.mark.parametrize("name", MODEL_NAMES + MODERNBERT_NAMES)
def test_fp16_model_of_every_head_loads_and_agrees_with_fp32(
    root: Path, name: str, tmp_path: Path
) -> None:
    """
    The fp16 graph is valid for every head and its fp16 weights keep fp32's answers.

    The Engine refuses fp16 on CPU, so a bare ONNX Runtime CPU session runs it here; it computes
    in fp32 where it lacks fp16 kernels, so GPU arithmetic is measured on a GPU (BENCHMARKS.md).
    """
    fp16_dir = tmp_path / "fp16"
    prepare(str(TESTDATA / name), fp16_dir, device=Device.CUDA, precision=Precision.FP16)
    fp32_dir = prepared_model(root, name)
    engine = fixture_engine(fp32_dir)
    batch = engine.pad(engine.tokenizer.encode(texts_for(name)))
    taken = {i.name for i in onnx.load(fp32_dir / MODEL_NAME).graph.input}
    feeds = {k: v for k, v in batch.model_inputs().items() if k in taken}
    if name.endswith("-mlm"):
        feeds["mask_positions"] = np.argwhere(batch.input_ids == engine.tokenizer.mask_id)
        feeds["top_k"] = np.array([5], np.int64)
    runs = [
        ort.InferenceSession(str(d / MODEL_NAME), providers=["CPUExecutionProvider"]).run(
            None, feeds
        )
        for d in (fp32_dir, fp16_dir)
    ]
    names = read_manifest(fp32_dir).outputs
    assert len(runs[0]) == len(runs[1]) == len(names)
    for output, full, half in zip(names, *runs, strict=True):
        if output == "mask_top_ids":
            scores = runs[0][names.index("mask_top_scores")]
            apart = _clear_of_neighbours(scores, 0.01 * float(np.abs(scores).max()))
            assert apart.any()
            assert half[apart].tolist() == full[apart].tolist()
            continue
        # fp16 weights move every output by well under 1% of its largest value (0.4% at most on
        # these models); a broken head or a lost weight moves it by far more.
        worst = float(np.abs(half - full).max() / np.abs(full).max())
        assert worst <= 0.01, f"{output}: max difference {worst:.2%} of its largest value"


def _clear_of_neighbours(scores: np.ndarray, tolerance: float) -> np.ndarray:
    """
    Ranks (of [masks, k] top-k scores) more than `tolerance` from the ranks beside them: there the
    token must be the same at either precision; near-ties may swap places under fp16's error.
    """
    gaps = np.abs(np.diff(scores, axis=1)) > tolerance
    edge = np.ones((len(scores), 1), bool)
    clear: np.ndarray = np.concatenate([edge, gaps], axis=1) & np.concatenate([gaps, edge], axis=1)
    return clear


def test_precision_device_mismatch_is_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="int8 is not supported on cuda"):
        prepare(str(TINY_BERT), tmp_path / "x", device=Device.CUDA, precision=Precision.INT8)
    assert not (tmp_path / "x").exists()


def test_prepare_is_idempotent_and_rebuilds_when_inputs_change(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(TINY_BERT, source)
    out = tmp_path / "out"
    first = prepare(str(source), out)
    stamp = (out / MODEL_NAME).stat().st_mtime_ns
    assert prepare(str(source), out) == first
    assert (out / MODEL_NAME).stat().st_mtime_ns == stamp, "an identical prepare rewrote the model"

    config = json.loads((source / "config.json").read_text())
    config["layer_norm_eps"] = 1e-6
    (source / "config.json").write_text(json.dumps(config))
    second = prepare(str(source), out)
    assert second.cache_key != first.cache_key
    assert [
        p.name for p in tmp_path.iterdir() if p.name.startswith(".")
    ] == [], "temp dirs left behind"


def test_concurrent_prepares_of_one_target_all_succeed_and_build_once(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "bert_runtime.preparation.cli", str(TINY_BERT), "-v", "--out"]
    processes = [
        subprocess.Popen(
            [*command, str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    outcomes = [(p.wait(timeout=300), p.stderr.read().decode()) for p in processes if p.stderr]
    assert [code for code, _ in outcomes] == [0, 0, 0], [err for _, err in outcomes]
    assert sum("building" in err for _, err in outcomes) == 1, "more than one build ran"
    assert sum("already prepared" in err for _, err in outcomes) == 2
    manifest = read_manifest(out)
    assert all(sha256_file(out / name) == digest for name, digest in manifest.output_sha256.items())
    assert [p.name for p in tmp_path.iterdir()] == ["shared"], "staging files left behind"


def test_manifest_records_inputs_outputs_and_hashes(root: Path) -> None:
    path = prepared_model(root, "tiny-bert-mlm")
    manifest = read_manifest(path)
    assert manifest.source == str(TESTDATA / "tiny-bert-mlm")
    assert manifest.revision is None
    assert manifest.heads == ["fill-mask"]
    assert manifest.input_sha256["model.safetensors"] == sha256_file(
        TESTDATA / "tiny-bert-mlm" / "model.safetensors"
    )
    assert manifest.output_sha256[MODEL_NAME] == sha256_file(path / MODEL_NAME)
    assert "mask_positions" in manifest.inputs
    assert {"cls_embedding", "mean_embedding", "mask_top_ids"} <= set(manifest.outputs)
    assert manifest.max_sequence_length == 64


def test_missing_files_are_all_named_and_nothing_is_written(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(TINY_BERT / "config.json", source)
    (source / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(MissingModelFilesError) as raised:
        prepare(str(source), tmp_path / "out")
    assert "only pytorch_model.bin found" in str(raised.value)
    assert "tokenizer.json, vocab.txt or vocab.json + merges.txt" in str(raised.value)
    assert not (tmp_path / "out").exists()


_NO_HIDDEN_SIZE = {
    k: v
    for k, v in json.loads((TINY_BERT / "config.json").read_text()).items()
    if k != "hidden_size"
}


@pytest.mark.parametrize(
    ("checkpoint", "name", "content", "said"),
    [
        (TINY_BERT, "config.json", b'{"model_type": "bert",', "config.json is not valid JSON"),
        (TINY_BERT, "config.json", b"\xff\xfe", "config.json is not valid JSON"),
        (TINY_BERT, "config.json", b"[1, 2]", "config.json is not a JSON object"),
        (TINY_BERT, "config.json", json.dumps(_NO_HIDDEN_SIZE).encode(), "has no 'hidden_size'"),
        (TINY_BERT, "tokenizer_config.json", b"[1", "tokenizer_config.json is not valid JSON"),
        (TINY_BERT, "tokenizer.json", b'{"x": 1}', "is not a readable tokenizer.json"),
        (TINY_BERT, "model.safetensors", b"\0" * 64, "is not a readable safetensors file"),
        (TINY_ST, "modules.json", b"[{", "modules.json is not valid JSON"),
    ],
    ids=[
        "truncated",
        "not-utf8",
        "not-object",
        "no-hidden-size",
        "tokenizer-config",
        "tokenizer",
        "weights",
        "modules",
    ],
)
def test_an_unreadable_file_is_named_and_nothing_is_written(
    tmp_path: Path, checkpoint: Path, name: str, content: bytes, said: str
) -> None:
    """A damaged download gives an error naming the file, not a traceback from a parser."""
    source = tmp_path / "source"
    shutil.copytree(checkpoint, source)
    (source / name).write_bytes(content)
    with pytest.raises(ModelSourceError, match=re.escape(said)) as raised:
        prepare(str(source), tmp_path / "out")
    assert str(source / name) in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_a_damaged_manifest_asks_for_the_model_to_be_prepared_again(
    tmp_path: Path, root: Path
) -> None:
    prepared = tmp_path / "prepared"
    shutil.copytree(prepared_model(root), prepared)
    manifest = json.loads((prepared / "manifest.json").read_text())
    del manifest["vocab_size"]
    (prepared / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelSourceError, match="manifest this version can read .*again"):
        read_manifest(prepared)
    (prepared / "manifest.json").write_text("{")
    with pytest.raises(ModelSourceError, match="JSONDecodeError"):
        read_manifest(prepared)


@pytest.mark.parametrize(
    ("checkpoint", "changes", "said"),
    [
        (
            TINY_BERT,
            {"hidden_size": 64},
            "embeddings.word_embeddings.weight is [91, 32], but config.json says [91, 64] "
            "(vocab_size x hidden_size)",
        ),
        (TINY_BERT, {"vocab_size": 200}, "is [91, 32], but config.json says [200, 32]"),
        (
            TINY_BERT,
            {"intermediate_size": 128},
            "encoder.layer.0.intermediate.dense.weight is [64, 32], but config.json says "
            "[128, 32] (intermediate_size x hidden_size)",
        ),
        (
            TINY_ELECTRA_MLM,
            {"embedding_size": 24},
            "is [91, 16], but config.json says [91, 24] (vocab_size x embedding_size)",
        ),
    ],
    ids=["hidden_size", "vocab_size", "intermediate_size", "electra-embedding_size"],
)
def test_a_config_that_misstates_the_weights_sizes_is_refused(
    tmp_path: Path, checkpoint: Path, changes: dict[str, object], said: str
) -> None:
    """Built anyway, the model would run at the weights' width and the manifest state another."""
    source = with_config(tmp_path, checkpoint, **changes)
    with pytest.raises(ModelSourceError, match=re.escape(said)) as raised:
        prepare(str(source), tmp_path / "out")
    assert str(source / "model.safetensors") in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_layers_the_weights_lack_are_named_and_extra_ones_are_left_out(tmp_path: Path) -> None:
    more = with_config(tmp_path / "more", TINY_BERT, num_hidden_layers=3)
    with pytest.raises(MissingTensorsError) as raised:
        prepare(str(more), tmp_path / "out")
    assert raised.value.missing == [
        "encoder.layer.2.attention.self.query.weight",
        "encoder.layer.2.intermediate.dense.weight",
    ]
    # As transformers does, a config with fewer layers than the weights uses the first ones.
    fewer = with_config(tmp_path / "fewer", TINY_BERT, num_hidden_layers=1)
    prepare(str(fewer), tmp_path / "out")
    names = {node.name for node in onnx.load(tmp_path / "out" / MODEL_NAME).graph.node}
    assert any(name.startswith("l0_") for name in names)
    assert not any(name.startswith("l1_") for name in names)


def test_unsupported_architecture_is_named(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(TINY_BERT, source)
    config = json.loads((source / "config.json").read_text())
    config["model_type"] = "deberta-v2"
    (source / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match="'deberta-v2' is not supported") as raised:
        prepare(str(source), tmp_path / "out")
    supported = "'bert', 'roberta', 'xlm-roberta', 'mpnet', 'electra', 'distilbert', 'modernbert'"
    assert supported in str(raised.value)


def test_legacy_gamma_beta_names_and_vocab_txt_only_checkpoints(tmp_path: Path, root: Path) -> None:
    source = tmp_path / "legacy"
    shutil.copytree(TINY_BERT, source)
    tensors = load_file(str(source / "model.safetensors"))
    renamed = {
        name.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta"
        ): value
        for name, value in tensors.items()
    }
    save_file(renamed, str(source / "model.safetensors"))
    with_vocabulary_files_only(source)

    prepare(str(source), tmp_path / "out")
    legacy = fixture_engine(tmp_path / "out")
    modern = fixture_engine(prepared_model(root, "tiny-bert"))
    texts = golden_texts()
    assert [s.tolist() for s in legacy.tokenizer.encode(texts)] == [
        s.tolist() for s in modern.tokenizer.encode(texts)
    ]
    np.testing.assert_allclose(legacy.embed(texts), modern.embed(texts), atol=1e-6)


def test_cli_prepares_and_reports_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "cli"
    with caplog.at_level(logging.WARNING):
        assert cli.main([str(TINY_BERT), "--out", str(out), "--precision", "int8"]) == 0
    # The quantizer's generic advice to pre-process does not apply to an optimized graph.
    assert "pre-processing" not in caplog.text
    summary = json.loads(capsys.readouterr().out)
    assert summary["precision"] == "int8"
    assert read_manifest(out).precision is Precision.INT8

    assert cli.main([str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err
