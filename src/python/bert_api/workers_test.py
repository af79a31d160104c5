"""WORKERS=2: front-end worker processes feeding one engine process, against real processes."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest

from bert_api.serve import tokenize_on_the_calling_thread
from bert_api.testing import RunningServer, run_server
from bert_runtime.config import EngineConfig
from bert_runtime.serving.engine import Engine
from bert_runtime.testutil.models import TINY_BERT_CLS, TINY_BERT_MLM

TEXTS = ["hello world", "the quick brown fox", ""]


def _workers(server: RunningServer) -> list[psutil.Process]:
    children = psutil.Process(server.process.pid).children()
    return [c for c in children if "resource_tracker" not in " ".join(c.cmdline())]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {"MODEL_NAME": str(TINY_BERT_MLM), "WORKERS": "2"}
    with run_server(env, tmp_path_factory.mktemp("workers")) as running:
        yield running


def _engine(server_dir: Path) -> Engine:
    prepared = next((server_dir / "cache" / "prepared").iterdir())
    return Engine(prepared, EngineConfig(max_sequence_length=128))


def test_two_workers_and_one_engine_answer_as_the_runtime_does(
    server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert len(_workers(server)) == 2
    body = httpx.post(f"{server.url}/embed", json={"inputs": TEXTS}, timeout=30).json()
    engine = _engine(server.log.parent)
    np.testing.assert_allclose(np.array(body["embeddings"]), engine.embed(TEXTS), atol=1e-5)
    filled = httpx.post(
        f"{server.url}/fill-mask", json={"inputs": "the [MASK] sat", "top_k": 3}, timeout=30
    ).json()
    (expected,) = engine.fill_mask(["the [MASK] sat"], top_k=3)
    assert [c["token_id"] for c in filled["predictions"][0][0]] == [
        c.token_id for c in expected.masks[0]
    ]
    info = httpx.get(f"{server.url}/v1/models/bert").json()["model"]
    assert info["tasks"] == ["embed", "fill-mask"] and info["embedding_size"] == 32


def test_workers_tokenize_without_tokenizers_own_threads(server: RunningServer) -> None:
    for worker in _workers(server):
        assert worker.environ().get("TOKENIZERS_PARALLELISM") == "false"


def test_a_users_tokenizers_parallelism_stands() -> None:
    environ = {"TOKENIZERS_PARALLELISM": "true"}
    tokenize_on_the_calling_thread(environ)
    assert environ == {"TOKENIZERS_PARALLELISM": "true"}
    unset: dict[str, str] = {}
    tokenize_on_the_calling_thread(unset)
    assert unset == {"TOKENIZERS_PARALLELISM": "false"}


def test_errors_cross_the_socket_with_their_status(server: RunningServer) -> None:
    refused = httpx.post(f"{server.url}/fill-mask", json={"inputs": "no mask"}, timeout=30)
    assert refused.status_code == 422
    assert "has no [MASK] token" in refused.json()["error"]["message"]
    missing = httpx.post(f"{server.url}/classify", json={"inputs": "x"}, timeout=30)
    assert missing.status_code == 422


def test_one_scrape_adds_up_every_process(server: RunningServer) -> None:
    for _ in range(20):
        assert httpx.post(f"{server.url}/embed", json={"inputs": "count me"}).status_code == 200
    samples: dict[str, float] = {}
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    assert samples['inference_requests_total{status="200"}'] >= 20
    assert samples["inference_model_ready"] == 1.0
    # The engine process ran every text (the batch metrics are its own).
    assert samples["inference_batch_size_sum"] >= 20


def test_a_worker_that_dies_is_started_again(server: RunningServer) -> None:
    victim = _workers(server)[0]
    victim.kill()
    victim.wait(timeout=10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alive = [w for w in _workers(server) if w.is_running() and w.pid != victim.pid]
        if len(alive) == 2:
            break
        time.sleep(0.2)
    assert len(alive) == 2
    for _ in range(10):
        assert httpx.post(f"{server.url}/embed", json={"inputs": "still here"}).status_code == 200


def test_pairs_and_deadlines_cross_the_socket(tmp_path: Path) -> None:
    env = {"MODEL_NAME": str(TINY_BERT_CLS), "WORKERS": "2"}
    with run_server(env, tmp_path) as running:
        pairs = {"pairs": [["is it good ?", "it is bad"], ["a", "b"]]}
        answer = httpx.post(f"{running.url}/classify", json=pairs, timeout=30)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2
        quick = httpx.post(
            f"{running.url}/classify",
            json={"inputs": ["a"]},
            headers={"X-Request-Timeout": "5"},
            timeout=30,
        )
        assert quick.status_code == 200


def test_sigterm_stops_the_workers_and_the_engine_with_exit_0(tmp_path: Path) -> None:
    env = {"MODEL_NAME": str(TINY_BERT_MLM), "WORKERS": "2"}
    with run_server(env, tmp_path) as running:
        workers = _workers(running)
        assert httpx.post(f"{running.url}/embed", json={"inputs": "x"}).status_code == 200
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=60) == 0
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def test_workers_stop_when_the_engine_process_is_killed(tmp_path: Path) -> None:
    """SIGKILL (the OOM killer) leaves no orphaned worker holding the port."""
    env = {"MODEL_NAME": str(TINY_BERT_MLM), "WORKERS": "2"}
    with run_server(env, tmp_path) as server:
        workers = _workers(server)
        assert len(workers) == 2
        server.process.kill()
        server.process.wait(timeout=10)
        _gone, alive = psutil.wait_procs(workers, timeout=20)
        assert alive == [], f"workers left running: {alive}"
