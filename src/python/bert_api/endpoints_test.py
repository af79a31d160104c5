"""Every endpoint and protocol shape, against a real server process serving the tiny models."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from bert_api.testing import RunningServer, run_server
from bert_runtime.config import EngineConfig
from bert_runtime.serving.engine import Engine
from bert_runtime.testutil.models import (
    TESTDATA,
    TINY_BERT_CLS,
    TINY_BERT_MLM,
    TINY_BERT_RERANK,
    TINY_MPNET_MLM,
    TINY_ROBERTA_MLM,
    golden_pairs,
    golden_roberta_texts,
    golden_texts,
    golden_token_texts,
    goldens,
    prepared_model,
    sentence_transformers_layout,
    texts_for,
    write_dense,
)

TEXTS = ["hello world", "the quick brown fox jumps over the lazy dog", ""]


@pytest.fixture(scope="module")
def mlm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # A raw checkpoint directory: the server prepares it on start-up, as it would a hub model.
    with run_server({"MODEL_NAME": str(TINY_BERT_MLM)}, tmp_path_factory.mktemp("mlm")) as server:
        yield server


@pytest.fixture(scope="module")
def cls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server({"MODEL_NAME": str(TINY_BERT_CLS)}, tmp_path_factory.mktemp("cls")) as server:
        yield server


@pytest.fixture(scope="module")
def rerank_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = {"MODEL_NAME": str(TINY_BERT_RERANK)}
    with run_server(settings, tmp_path_factory.mktemp("rerank")) as server:
        yield server


@pytest.fixture(scope="module")
def prompt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """
    A sentence-transformers layout with prompts and a default one ("hello " for queries), and a
    Dense layer from 32 to 16 values.
    """
    root = tmp_path_factory.mktemp("prompts")
    prompts = {"prompts": {"query": "hello ", "passage": ""}, "default_prompt_name": "query"}
    source = sentence_transformers_layout(
        root,
        {"pooling_mode_mean_tokens": True},
        ["Transformer", "Pooling", "Dense", "Normalize"],
        {"config_sentence_transformers.json": prompts},
    )
    write_dense(source / "2_Dense", np.random.default_rng(3).normal(0, 0.3, (16, 32)), None)
    with run_server({"MODEL_NAME": str(source)}, root) as server:
        yield server


@pytest.fixture(scope="module")
def engine(mlm_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The runtime in-process on the very directory the server prepared: the reference."""
    prepared = next((tmp_path_factory.getbasetemp() / "mlm0" / "cache" / "prepared").iterdir())
    return Engine(prepared, EngineConfig(max_sequence_length=128))


def _post(server: RunningServer, path: str, body: object) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, timeout=30)


def test_health_and_readiness_routes(mlm_server: RunningServer) -> None:
    assert httpx.get(f"{mlm_server.url}/health").json() == {"status": "ready", "model": "bert"}
    assert httpx.get(f"{mlm_server.url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{mlm_server.url}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{mlm_server.url}/v2/models/bert/ready").status_code == 200


def test_model_metadata_names_provider_and_tasks(mlm_server: RunningServer) -> None:
    v1 = httpx.get(f"{mlm_server.url}/v1/models/bert").json()
    assert v1["name"] == "bert" and v1["ready"] is True
    assert v1["model"]["execution_provider"] == "CPUExecutionProvider"
    assert v1["model"]["tasks"] == ["embed", "fill-mask"]
    assert v1["model"]["mask_token"] == "[MASK]"
    assert v1["model"]["hidden_size"] == 32
    # Embedding defaults: no sentence-transformers settings, so mean pooling, normalized.
    assert (v1["model"]["pooling"], v1["model"]["normalize"]) == ("mean", True)
    v2 = httpx.get(f"{mlm_server.url}/v2/models/bert").json()
    assert v2["platform"] == "onnxruntime_onnx"
    assert v2["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert httpx.get(f"{mlm_server.url}/v1/models/other").status_code == 404
    assert httpx.get(f"{mlm_server.url}/v2/models/other/ready").status_code == 404


def test_embed_matches_the_runtime(mlm_server: RunningServer, engine: Engine) -> None:
    body = _post(mlm_server, "/embed", {"inputs": TEXTS}).json()
    np.testing.assert_allclose(np.array(body["embeddings"]), engine.embed(TEXTS), atol=1e-5)
    assert body["dimensions"] == 32
    assert body["usage"]["tokens"] == sum(len(s) for s in engine.tokenizer.encode(TEXTS))


def test_embed_options_and_single_string_input(mlm_server: RunningServer, engine: Engine) -> None:
    from bert_runtime.config import Pooling
    from bert_runtime.serving.tasks import EmbedRequest

    body = _post(
        mlm_server, "/embed", {"inputs": "hello", "pooling": "cls", "normalize": False}
    ).json()
    expected = engine.embed(["hello"], EmbedRequest(Pooling.CLS, normalize=False))
    np.testing.assert_allclose(np.array(body["embeddings"]), expected, atol=1e-5)


def test_openai_embeddings_float_and_base64_agree(
    mlm_server: RunningServer, engine: Engine
) -> None:
    floats = _post(mlm_server, "/v1/embeddings", {"input": TEXTS, "model": "bert"}).json()
    encoded = _post(
        mlm_server, "/v1/embeddings", {"input": TEXTS, "encoding_format": "base64"}
    ).json()
    assert floats["object"] == "list" and floats["model"] == "bert"
    assert [d["index"] for d in floats["data"]] == [0, 1, 2]
    decoded = np.stack(
        [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in encoded["data"]]
    )
    as_floats = np.array([d["embedding"] for d in floats["data"]])
    np.testing.assert_allclose(decoded, as_floats, atol=1e-7)
    np.testing.assert_allclose(as_floats, engine.embed(TEXTS), atol=1e-5)
    assert floats["usage"]["prompt_tokens"] == floats["usage"]["total_tokens"] > 0
    assert _post(mlm_server, "/v1/embeddings", {"input": "x", "model": "gpt"}).status_code == 404


def test_openai_embeddings_shortened_to_dimensions_are_unit_length_prefixes(
    mlm_server: RunningServer, engine: Engine
) -> None:
    body = {"input": TEXTS, "dimensions": 8}
    floats = _post(mlm_server, "/v1/embeddings", body).json()
    encoded = _post(mlm_server, "/v1/embeddings", {**body, "encoding_format": "base64"}).json()
    got = np.array([d["embedding"] for d in floats["data"]])
    full = engine.embed(TEXTS)  # the model's default: mean, normalized
    expected = full[:, :8] / np.linalg.norm(full[:, :8], axis=1, keepdims=True)
    assert got.shape == (len(TEXTS), 8)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    decoded = [np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in encoded["data"]]
    np.testing.assert_allclose(np.stack(decoded), got, atol=1e-7)
    whole = _post(mlm_server, "/v1/embeddings", {"input": TEXTS, "dimensions": 32}).json()
    np.testing.assert_allclose([d["embedding"] for d in whole["data"]], full, atol=1e-5)


@pytest.mark.parametrize(
    ("dimensions", "message"), [(33, "dimensions is 33, more than the model's 32"), (0, ">= 1")]
)
def test_openai_embeddings_dimensions_out_of_range_are_refused(
    mlm_server: RunningServer, dimensions: int, message: str
) -> None:
    answer = _post(mlm_server, "/v1/embeddings", {"input": "x", "dimensions": dimensions})
    assert answer.status_code == 422
    assert message in answer.json()["error"]["message"]


# 48 one-token words: over the tiny models' 64 positions, with different words at each end.
LONG_TEXT = "hello world " + "the quick brown fox " * 15 + "the cat sat on the mat"


def test_embed_follows_the_requests_truncation(mlm_server: RunningServer, engine: Engine) -> None:
    from bert_runtime.config import Truncation, TruncationSide
    from bert_runtime.serving.tasks import Embedding, EmbedRequest

    def embedded(body: dict[str, object]) -> np.ndarray:
        answer = _post(mlm_server, "/embed", {"inputs": [LONG_TEXT], **body})
        assert answer.status_code == 200, answer.text
        return np.array(answer.json()["embeddings"][0])

    left_ids = engine.tokenizer.encode([LONG_TEXT], Truncation(side=TruncationSide.LEFT))
    (left,) = engine.run(left_ids, [EmbedRequest()])
    assert isinstance(left, Embedding)
    (right,) = engine.embed([LONG_TEXT])
    np.testing.assert_allclose(embedded({"truncation_direction": "Left"}), left.vector, atol=1e-5)
    np.testing.assert_allclose(embedded({"truncate": True}), right, atol=1e-5)
    np.testing.assert_allclose(embedded({}), right, atol=1e-5)  # the server's TRUNCATION
    assert np.abs(left.vector - right).max() > 1e-3
    refused = _post(mlm_server, "/embed", {"inputs": ["short", LONG_TEXT], "truncate": False})
    assert refused.status_code == 422
    assert "input 1 has" in refused.json()["error"]["message"]


def test_rerank_and_classify_pairs_follow_the_requests_truncation(
    rerank_server: RunningServer,
) -> None:
    def rerank(body: dict[str, object]) -> httpx.Response:
        return _post(rerank_server, "/rerank", {"query": "cat", "texts": [LONG_TEXT], **body})

    left = rerank({"truncation_direction": "left", "raw_scores": True}).json()[0]["score"]
    right = rerank({"raw_scores": True}).json()[0]["score"]
    assert left != pytest.approx(right, abs=1e-4)
    pairs = {"pairs": [["cat", LONG_TEXT]], "truncation_direction": "left"}
    classified = _post(rerank_server, "/classify", pairs).json()["predictions"][0]
    assert next(iter(classified["logits"].values())) == pytest.approx(left, abs=1e-5)
    refused = rerank({"truncate": False})
    assert refused.status_code == 422
    assert "pair 0 has" in refused.json()["error"]["message"]


def test_embedding_routes_put_the_models_prompt_in_front_and_project_through_dense(
    prompt_server: RunningServer,
) -> None:
    def embed(path: str, body: dict[str, object]) -> np.ndarray:
        answer = _post(prompt_server, path, body)
        assert answer.status_code == 200, answer.text
        payload = answer.json()
        rows = payload.get("embeddings") or [d["embedding"] for d in payload["data"]]
        return np.array(rows)

    info = httpx.get(f"{prompt_server.url}/v1/models/bert").json()["model"]
    assert info["prompts"] == {"query": "hello ", "passage": ""}
    assert info["default_prompt_name"] == "query"
    assert (info["hidden_size"], info["embedding_size"]) == (32, 16)  # through the Dense layer
    by_hand = embed("/embed", {"inputs": ["hello the cat"], "prompt_name": "passage"})
    np.testing.assert_allclose(embed("/embed", {"inputs": ["the cat"]}), by_hand, atol=1e-6)
    named = embed("/embed", {"inputs": ["the cat"], "prompt_name": "query"})
    np.testing.assert_allclose(named, by_hand, atol=1e-6)
    openai = embed("/v1/embeddings", {"input": ["the cat"]})  # the default prompt here too
    np.testing.assert_allclose(openai, by_hand, atol=1e-6)
    assert by_hand.shape == (1, 16)
    v2 = httpx.get(f"{prompt_server.url}/v2/models/bert").json()
    assert v2["outputs"][0]["shape"] == [-1, 16]
    too_wide = _post(prompt_server, "/v1/embeddings", {"input": "x", "dimensions": 17})
    assert "more than the model's 16" in too_wide.json()["error"]["message"]
    bare = embed("/embed", {"inputs": ["the cat"], "prompt_name": "passage"})
    assert np.abs(bare - by_hand).max() > 1e-3
    kserve = _post(
        prompt_server,
        "/v1/models/bert:predict",
        {"instances": ["the cat"], "parameters": {"prompt_name": "query"}},
    ).json()["predictions"]
    np.testing.assert_allclose(kserve, by_hand, atol=1e-6)
    v2_body = {
        "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hello the cat"]}],
        "parameters": {"prompt_name": "passage"},
    }
    v2_answer = _post(prompt_server, "/v2/models/bert/infer", v2_body).json()
    np.testing.assert_allclose(v2_answer["outputs"][0]["data"], by_hand.ravel(), atol=1e-6)
    for parameters, message in [
        ({"prompt_name": 3}, "parameters.prompt_name: Expected `str | null`, got `int`"),
        ({"task": "fill-mask", "prompt_name": "query"}, "parameters.prompt_name is for task embed"),
    ]:
        body = {"instances": ["the cat"], "parameters": parameters}
        refused = _post(prompt_server, "/v1/models/bert:predict", body)
        assert refused.status_code == 422
        assert message in refused.json()["error"]["message"]
    unknown = _post(prompt_server, "/embed", {"inputs": "x", "prompt_name": "doc"})
    assert unknown.status_code == 422
    assert "unknown prompt_name 'doc'" in unknown.json()["error"]["message"]


def test_an_mpnet_model_embeds_as_transformers_does(tmp_path: Path) -> None:
    """all-mpnet-base-v2's network (relative position bias, no token types): mean of the states."""
    texts = golden_roberta_texts()
    with run_server({"MODEL_NAME": str(TINY_MPNET_MLM)}, tmp_path) as server:
        raw = _post(server, "/embed", {"inputs": texts, "pooling": "mean", "normalize": False})
        openai = _post(server, "/v1/embeddings", {"input": texts}).json()
    means = [goldens()[f"tiny-mpnet-mlm/last_hidden_state/{i}"].mean(axis=0) for i in range(6)]
    np.testing.assert_allclose(np.array(raw.json()["embeddings"]), means, atol=1e-4)
    unit = [mean / np.linalg.norm(mean) for mean in means]
    np.testing.assert_allclose([row["embedding"] for row in openai["data"]], unit, atol=1e-4)


def _check_fill_mask_answer(body: dict[str, Any], name: str) -> list[list[dict[str, Any]]]:
    """The one text's masks: top ids and scores as transformers gave them for golden text 3."""
    (masks,) = body["predictions"]
    gold_ids = goldens()[f"{name}/top_ids/3"]
    assert [[c["token_id"] for c in candidates] for candidates in masks] == gold_ids.tolist()
    scores = np.array([[c["score"] for c in candidates] for candidates in masks])
    np.testing.assert_allclose(scores, goldens()[f"{name}/top_scores/3"], atol=1e-4)
    found: list[list[dict[str, Any]]] = masks
    return found


def test_fill_mask_matches_transformers_goldens(mlm_server: RunningServer) -> None:
    text = golden_texts()[3]
    body = _post(mlm_server, "/fill-mask", {"inputs": [text], "top_k": 5}).json()
    _check_fill_mask_answer(body, "tiny-bert-mlm")


def test_a_roberta_model_fills_its_mask_token_as_transformers_pipeline_does(
    tmp_path: Path,
) -> None:
    """RoBERTa's <mask>, its ids and scores, and tokens decoded as the pipeline shows them."""
    with run_server({"MODEL_NAME": str(TINY_ROBERTA_MLM)}, tmp_path) as server:
        text = golden_roberta_texts()[3]
        body = _post(server, "/fill-mask", {"inputs": [text], "top_k": 5}).json()
        refused = _post(server, "/fill-mask", {"inputs": [golden_texts()[3]]})
        info = httpx.get(f"{server.url}/v1/models/bert").json()["model"]
    assert info["architecture"] == "RobertaForMaskedLM"
    assert info["mask_token"] == "<mask>"
    masks = _check_fill_mask_answer(body, "tiny-roberta-mlm")
    tokens = [[c["token"] for c in candidates] for candidates in masks]
    assert tokens == golden_token_texts("tiny-roberta-mlm", 3)
    # BERT's [MASK] is plain text to RoBERTa.
    assert refused.status_code == 422
    assert "text has no <mask> token" in refused.json()["error"]["message"]


def test_kserve_v1_predict_embeddings_and_fill_mask(
    mlm_server: RunningServer, engine: Engine
) -> None:
    body = _post(
        mlm_server, "/v1/models/bert:predict", {"instances": ["hello", {"text": "world"}]}
    ).json()
    np.testing.assert_allclose(
        np.array(body["predictions"]), engine.embed(["hello", "world"]), atol=1e-5
    )
    masked = _post(
        mlm_server,
        "/v1/models/bert:predict",
        {"instances": [golden_texts()[3]], "parameters": {"task": "fill-mask", "top_k": 1}},
    ).json()
    tops = [candidates[0]["token_id"] for candidates in masked["predictions"][0]]
    assert tops == goldens()["tiny-bert-mlm/top_ids/3"][:, 0].tolist()
    assert _post(mlm_server, "/v1/models/bert:explain", {"instances": ["x"]}).status_code == 404
    assert _post(mlm_server, "/v1/models/other:predict", {"instances": ["x"]}).status_code == 404


def test_open_inference_v2_infer(mlm_server: RunningServer, engine: Engine) -> None:
    request = {
        "id": "42",
        "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["hello", "world"]}],
    }
    body = _post(mlm_server, "/v2/models/bert/infer", request).json()
    assert body["id"] == "42" and body["model_name"] == "bert"
    (output,) = body["outputs"]
    assert output["name"] == "embedding" and output["shape"] == [2, 32]
    vectors = np.array(output["data"], dtype=np.float32).reshape(output["shape"])
    np.testing.assert_allclose(vectors, engine.embed(["hello", "world"]), atol=1e-5)
    wrong_shape = {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": ["a"]}]}
    assert _post(mlm_server, "/v2/models/bert/infer", wrong_shape).status_code == 422


def test_tokenize(mlm_server: RunningServer, engine: Engine) -> None:
    body = _post(mlm_server, "/tokenize", {"inputs": ["hello world"]}).json()
    (tokens,) = body["tokens"]
    assert tokens["tokens"] == ["[CLS]", "hello", "world", "[SEP]"]
    assert tokens["ids"] == engine.tokenizer.encode(["hello world"])[0].tolist()


def test_classify_matches_transformers_goldens(cls_server: RunningServer) -> None:
    body = _post(cls_server, "/classify", {"inputs": golden_texts()}).json()
    labels = ["negative", "neutral", "positive"]
    for i, prediction in enumerate(body["predictions"]):
        gold = goldens()[f"tiny-bert-cls/probabilities/{i}"]
        got = np.array([prediction["scores"][label] for label in labels])
        np.testing.assert_allclose(got, gold, atol=1e-4)
        assert prediction["label"] == labels[int(np.argmax(gold))]
        logits = np.array([prediction["logits"][label] for label in labels])
        np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(), got, atol=1e-6)
    info = httpx.get(f"{cls_server.url}/v1/models/bert").json()["model"]
    assert "classify" in info["tasks"]
    # The vocabulary has [MASK], but a model without fill-mask takes no masked texts.
    assert info["mask_token"] is None


@pytest.mark.parametrize(
    ("name", "architecture"),
    [
        # The head of transformers' default sentiment model: pre_classifier + ReLU, no pooler.
        ("tiny-distilbert-cls", "DistilBertForSequenceClassification"),
        # dense + gelu + out_proj on the first token, with BERT's token types.
        ("tiny-electra-cls", "ElectraForSequenceClassification"),
        # RoBERTa's head (dense + tanh + out_proj) after relative-position attention.
        ("tiny-mpnet-cls", "MPNetForSequenceClassification"),
        ("tiny-roberta-cls", "RobertaForSequenceClassification"),
        # Its own encoder (rotary, windowed layers); the head mean-pools.
        ("tiny-modernbert-cls", "ModernBertForSequenceClassification"),
    ],
)
def test_a_relative_s_classifier_answers_as_transformers_does(
    tmp_path: Path, name: str, architecture: str
) -> None:
    with run_server({"MODEL_NAME": str(TESTDATA / name)}, tmp_path) as server:
        texts = _post(server, "/classify", {"inputs": texts_for(name)}).json()
        pairs = _post(server, "/classify", {"pairs": [list(p) for p in golden_pairs()]}).json()
        info = httpx.get(f"{server.url}/v1/models/bert").json()["model"]
    assert info["architecture"] == architecture
    labels = ["negative", "neutral", "positive"]
    answers = (
        ("probabilities", texts, texts_for(name)),
        ("pair_probabilities", pairs, golden_pairs()),
    )
    for key, body, sent in answers:
        assert len(body["predictions"]) == len(sent)
        for i, prediction in enumerate(body["predictions"]):
            gold = goldens()[f"{name}/{key}/{i}"]
            got = np.array([prediction["scores"][label] for label in labels])
            np.testing.assert_allclose(got, gold, atol=1e-4)
            assert prediction["label"] == labels[int(np.argmax(gold))]


def test_classify_pairs_matches_transformers_goldens(cls_server: RunningServer) -> None:
    pairs = golden_pairs()
    body = _post(cls_server, "/classify", {"pairs": [list(p) for p in pairs]}).json()
    labels = ["negative", "neutral", "positive"]
    assert len(body["predictions"]) == len(pairs)
    for i, prediction in enumerate(body["predictions"]):
        gold = goldens()[f"tiny-bert-cls/pair_probabilities/{i}"]
        got = np.array([prediction["scores"][label] for label in labels])
        np.testing.assert_allclose(got, gold, atol=1e-4)
    assert body["usage"]["tokens"] == sum(len(goldens()[f"pair_input_ids/{i}"]) for i in range(4))
    for bad in ({}, {"inputs": "x", "pairs": [["a", "b"]]}):
        response = _post(cls_server, "/classify", bad)
        assert response.status_code == 422
        assert "exactly one of inputs" in response.json()["error"]["message"]
    assert _post(cls_server, "/classify", {"pairs": [["only one"]]}).status_code == 422
    too_long = "a" * 20_001  # one over the default max_chars_per_item
    for side in (0, 1):
        pair = [too_long, "b"] if side == 0 else ["b", too_long]
        response = _post(cls_server, "/classify", {"pairs": [["a", "b"], pair]})
        assert response.status_code == 422
        assert response.json()["error"]["message"].startswith(f"pairs[1][{side}] has 20001 ")


def test_rerank_scores_as_transformers_and_ranks_best_first(rerank_server: RunningServer) -> None:
    gold = goldens()
    for i, (query, text) in enumerate(golden_pairs()):
        (row,) = _post(rerank_server, "/rerank", {"query": query, "texts": [text]}).json()
        assert row["index"] == 0 and "text" not in row
        assert abs(row["score"] - gold[f"tiny-bert-rerank/pair_scores/{i}"][0]) <= 1e-4
        body = {"query": query, "texts": [text], "raw_scores": True}
        (raw,) = _post(rerank_server, "/rerank", body).json()
        assert abs(raw["score"] - gold[f"tiny-bert-rerank/pair_logits/{i}"][0]) <= 1e-4
    query, texts = "a cat sat on the mat", golden_texts()
    body = {"query": query, "texts": texts, "return_text": True}
    ranked = _post(rerank_server, "/rerank", body).json()
    assert sorted(row["index"] for row in ranked) == list(range(len(texts)))
    assert [row["score"] for row in ranked] == sorted(
        (row["score"] for row in ranked), reverse=True
    )
    for row in ranked:
        assert row["text"] == texts[row["index"]]
        (alone,) = _post(rerank_server, "/rerank", {"query": query, "texts": [row["text"]]}).json()
        assert abs(alone["score"] - row["score"]) <= 1e-5
    tasks = httpx.get(f"{rerank_server.url}/v1/models/bert").json()["model"]["tasks"]
    assert tasks == ["embed", "classify", "rerank"]
    assert _post(rerank_server, "/rerank", {"query": "a", "texts": []}).status_code == 422


def test_kserve_v1_classifies_text_pairs(cls_server: RunningServer) -> None:
    url = "/v1/models/bert:predict"
    classify = {"task": "classify"}
    pairs = golden_pairs()
    instances: list[object] = [{"text": first, "text_pair": second} for first, second in pairs]
    instances.append("good day")  # a plain text beside the pairs
    body = _post(cls_server, url, {"instances": instances, "parameters": classify}).json()
    labels = ["negative", "neutral", "positive"]
    for i, prediction in enumerate(body["predictions"][: len(pairs)]):
        gold = goldens()[f"tiny-bert-cls/pair_probabilities/{i}"]
        np.testing.assert_allclose([prediction["scores"][k] for k in labels], gold, atol=1e-4)
    (alone,) = _post(cls_server, "/classify", {"inputs": ["good day"]}).json()["predictions"]
    np.testing.assert_allclose(
        [body["predictions"][-1]["scores"][k] for k in labels],
        [alone["scores"][k] for k in labels],
        atol=1e-6,
    )
    pair = [{"text": "a", "text_pair": "b" * 20_001}]
    response = _post(cls_server, url, {"instances": pair, "parameters": classify})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("instances[0].text_pair has 20001 ")
    embed = {"instances": [{"text": "a", "text_pair": "b"}], "parameters": {"task": "embed"}}
    response = _post(cls_server, url, embed)
    assert response.status_code == 422
    assert "text_pair needs parameters.task classify" in response.json()["error"]["message"]


def test_rerank_refuses_a_reranker_prepared_before_logits(tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(prepared_model(tmp_path, "tiny-bert-rerank"), old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["outputs"].remove("class_logits")
    (old / "manifest.json").write_text(json.dumps(manifest))
    with run_server({"MODEL_NAME": str(old)}, tmp_path) as server:
        response = _post(server, "/rerank", {"query": "a", "texts": ["b"]})
    assert response.status_code == 422
    assert "prepare it again" in response.json()["error"]["message"]


def _bytes_input(name: str, data: list[str]) -> dict[str, object]:
    return {"name": name, "shape": [len(data)], "datatype": "BYTES", "data": data}


def test_open_inference_v2_classifies_text_pairs(cls_server: RunningServer) -> None:
    url = "/v2/models/bert/infer"
    classify = {"task": "classify"}
    firsts, seconds = (list(side) for side in zip(*golden_pairs(), strict=True))
    inputs = [_bytes_input("text", firsts), _bytes_input("text_pair", seconds)]
    body = _post(cls_server, url, {"inputs": inputs, "parameters": classify}).json()
    (output,) = body["outputs"]
    labels = ["negative", "neutral", "positive"]
    assert output["shape"] == [len(firsts)]
    for i, prediction in enumerate(output["data"]):
        gold = goldens()[f"tiny-bert-cls/pair_probabilities/{i}"]
        np.testing.assert_allclose([prediction["scores"][k] for k in labels], gold, atol=1e-4)
    for bad, message in (
        ({"inputs": inputs, "parameters": {"task": "embed"}}, "needs parameters.task classify"),
        (
            {"inputs": [inputs[0], _bytes_input("other", seconds)], "parameters": classify},
            "must be named text_pair",
        ),
        (
            {"inputs": [inputs[0], _bytes_input("text_pair", seconds[:2])], "parameters": classify},
            "input text_pair has 2 elements, input 'text' 4",
        ),
        (
            {
                "inputs": [inputs[0], _bytes_input("text_pair", ["a", "b", "c", "d" * 20_001])],
                "parameters": classify,
            },
            "inputs[1].data[3] has 20001 characters",
        ),
    ):
        response = _post(cls_server, url, bad)
        assert response.status_code == 422, bad
        assert message in response.json()["error"]["message"]


def test_rerank_needs_a_single_label_model(cls_server: RunningServer) -> None:
    response = _post(cls_server, "/rerank", {"query": "a", "texts": ["b"]})
    assert response.status_code == 422
    assert response.json()["error"]["message"] == (
        "rerank needs a cross-encoder (a classification head with one label; this one has 3); "
        "this model serves: embed, classify"
    )
    assert "rerank" not in httpx.get(f"{cls_server.url}/v1/models/bert").json()["model"]["tasks"]


def test_tasks_missing_from_the_model_are_422(mlm_server: RunningServer) -> None:
    response = _post(mlm_server, "/classify", {"inputs": "x"})
    assert response.status_code == 422
    assert response.json()["error"]["message"] == (
        "classify needs a classification head; this model serves: embed, fill-mask"
    )
    response = _post(mlm_server, "/rerank", {"query": "q", "texts": ["x"]})
    assert response.status_code == 422
    assert response.json()["error"]["message"].endswith("this model serves: embed, fill-mask")


def test_metrics_endpoint_exposes_the_seed_metrics(mlm_server: RunningServer) -> None:
    _post(mlm_server, "/embed", {"inputs": ["metrics please"]})
    text = httpx.get(f"{mlm_server.url}/metrics").text
    for name in (
        'inference_requests_total{status="200"}',
        'inference_request_duration_seconds_bucket{le="0.01",model="bert"}',
        "inference_tokens_processed_total",
        "inference_batch_size_bucket",
        "inference_active_requests",
        "inference_queue_depth",
        "inference_queue_capacity 2048.0",
        "inference_queue_wait_seconds_bucket",
        "inference_batch_duration_seconds_bucket",
        "inference_padding_ratio_bucket",
        "inference_model_load_seconds",
    ):
        assert name in text, name


def test_openapi_schema_and_docs_page(mlm_server: RunningServer) -> None:
    schema = httpx.get(f"{mlm_server.url}/docs/openapi.json").json()
    for path in (
        "/embed",
        "/fill-mask",
        "/classify",
        "/tokenize",
        "/v1/embeddings",
        "/v2/models/{model_name}/infer",
    ):
        assert path in schema["paths"], path
    assert httpx.get(f"{mlm_server.url}/docs").status_code == 200
