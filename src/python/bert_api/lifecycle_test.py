"""Start-up, readiness, overload and graceful shutdown of the real server process."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bert_api.testing import run_server
from bert_runtime.huge_pages import TUNABLE, huge_pages_status
from bert_runtime.testutil.fake_hub import serve_hub, url_of
from bert_runtime.testutil.models import TINY_BERT, TINY_BERT_MLM, prepared_model


def test_live_at_once_ready_only_after_the_model_is_loaded(tmp_path: Path) -> None:
    shutil.copytree(TINY_BERT, tmp_path / "hub" / "google-bert" / "tiny-bert")
    with serve_hub(tmp_path / "hub", delay_s=2.0) as hub:
        env = {
            "MODEL_NAME": "google-bert/tiny-bert",
            "HF_ENDPOINT": url_of(hub),
            "HF_HUB_OFFLINE": "0",
        }
        with run_server(env, tmp_path, wait=False) as server:
            deadline = time.monotonic() + 30
            while True:
                try:
                    live = httpx.get(f"{server.url}/v2/health/live", timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, server.log.read_text()
                    time.sleep(0.05)
            assert live.status_code == 200
            ready = httpx.get(f"{server.url}/v2/health/ready")
            assert ready.status_code == 503 and ready.json() == {"ready": False}
            health = httpx.get(f"{server.url}/health")
            assert health.status_code == 503 and health.json()["status"] == "loading"
            early = httpx.post(f"{server.url}/embed", json={"inputs": "too soon"})
            assert early.status_code == 503 and early.headers["Retry-After"]
            server.wait_ready()
            assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
            assert httpx.post(f"{server.url}/embed", json={"inputs": "now"}).status_code == 200


def test_burst_against_a_small_queue_gets_only_200_or_429(tmp_path: Path) -> None:
    env = {
        "MODEL_NAME": str(TINY_BERT_MLM),
        "BATCH_SIZE": "1",
        "MAX_QUEUE_SIZE": "8",
        "MAX_QUEUE_DELAY_MS": "0",
    }
    with run_server(env, tmp_path) as server:

        async def burst() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
            async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:
                body = {"inputs": ["the quick brown fox", "jumps over", "the lazy", "dog"]}
                return await asyncio.gather(*(client.post("/embed", json=body) for _ in range(500)))

        responses = asyncio.run(burst())
        statuses = Counter(r.status_code for r in responses)
        assert sum(statuses.values()) == 500, "requests were lost"
        assert set(statuses) <= {200, 429}, statuses
        assert statuses[200] > 0 and statuses[429] > 0, statuses
        for response in responses:
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
                assert response.json()["error"]["type"] == "overloaded"
        assert httpx.get(f"{server.url}/health").status_code == 200


def _samples(url: str) -> dict[str, float]:
    """Every sample on /metrics, keyed `name{label="value",...}`."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_a_client_that_leaves_before_its_answer_has_its_texts_dropped(tmp_path: Path) -> None:
    # A long queue delay: texts that come while the model is busy (just after a batch of several)
    # would run one second after they arrive.
    env = {"MODEL_NAME": str(TINY_BERT_MLM), "MAX_QUEUE_DELAY_MS": "1000"}
    with run_server(env, tmp_path) as server:
        busy = httpx.post(f"{server.url}/embed", json={"inputs": ["busy", "model"]})
        assert busy.status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.url}/embed", json={"inputs": ["gone", "too", "soon"]}, timeout=0.3)
        time.sleep(1.5)
        left = _samples(server.url)
        assert left['inference_requests_total{status="499"}'] == 1
        assert left['inference_errors_total{type="client_closed"}'] == 1
        assert left["inference_batch_size_count{}"] == 1, "the abandoned texts were run"
        assert left["inference_active_requests{}"] == 0

        stayed = httpx.post(f"{server.url}/embed", json={"inputs": ["stayed"]}, timeout=30)
        assert stayed.status_code == 200
        after = _samples(server.url)
        assert after["inference_batch_size_count{}"] == 2
        assert after["inference_batch_size_sum{}"] == 3


def test_sigterm_during_a_burst_finishes_in_flight_requests_and_exits_0(tmp_path: Path) -> None:
    env = {
        "MODEL_NAME": str(TINY_BERT_MLM),
        "BATCH_SIZE": "64",
        # Hold requests in the queue so they are surely in flight when SIGTERM arrives.
        "MAX_QUEUE_DELAY_MS": "500",
        "SHUTDOWN_GRACE_SECONDS": "20",
    }
    with run_server(env, tmp_path) as server:

        async def burst_then_sigterm() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                # A batch of several has just run: the burst's texts wait for company, in flight.
                busy = await client.post("/embed", json={"inputs": ["busy", "model"]})
                assert busy.status_code == 200
                tasks = [
                    asyncio.ensure_future(client.post("/embed", json={"inputs": f"text {i}"}))
                    for i in range(40)
                ]
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    metrics = (await client.get("/metrics")).text
                    if "inference_active_requests 40.0" in metrics:
                        break
                    await asyncio.sleep(0.02)
                else:
                    raise AssertionError("the burst never got in flight")
                server.process.terminate()  # SIGTERM
                return await asyncio.gather(*tasks)

        responses = asyncio.run(burst_then_sigterm())
        assert [r.status_code for r in responses] == [200] * 40
        assert server.process.wait(timeout=30) == 0


def test_json_log_format_is_kept_after_start_up(tmp_path: Path) -> None:
    env = {"MODEL_NAME": str(TINY_BERT_MLM), "LOG_FORMAT": "json"}
    with run_server(env, tmp_path) as server:
        assert server.terminate() == 0
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert any("model ready" in record["message"] for record in records)
    assert {"time", "level", "logger", "message"} <= set(records[-1])


def _process_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode()
    return dict(entry.split("=", 1) for entry in raw.split("\0") if "=" in entry)


def test_serve_runs_with_huge_pages_unless_told_not_to(tmp_path: Path) -> None:
    usable = huge_pages_status().kernel_allows
    for setting, expected in (("true", TUNABLE if usable else None), ("false", None)):
        env = {"MODEL_NAME": str(TINY_BERT_MLM), "HUGE_PAGES": setting}
        with run_server(env, tmp_path) as server:
            # The same PID (exec, not a child), now started with the tunable.
            tunables = _process_environment(server.process.pid).get("GLIBC_TUNABLES")
            assert server.terminate() == 0
        assert tunables == expected, setting
        assert "transparent huge pages: kernel" in server.log.read_text()


def test_bad_setting_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    assert "BATCH_SIZE" in _failed_start_log({"BATCH_SIZE": "zero"}, tmp_path, exit_code=2)


def test_unreachable_model_exits_1_saying_how_to_fix_it(tmp_path: Path) -> None:
    log = _failed_start_log({"MODEL_NAME": "google-bert/not-cached"}, tmp_path)
    assert "could not load 'google-bert/not-cached'" in log
    assert "MODEL_NAME" in log and "HF_ENDPOINT" in log


def test_a_prepared_model_at_another_precision_exits_1_naming_both(tmp_path: Path) -> None:
    prepared = prepared_model(tmp_path, "tiny-bert", "int8")
    log = _failed_start_log({"MODEL_NAME": str(prepared), "PRECISION": "fp32"}, tmp_path)
    assert "is prepared at int8, not fp32" in log
    assert "Leave PRECISION empty" in log
    with run_server({"MODEL_NAME": str(prepared)}, tmp_path) as server:
        model = httpx.get(f"{server.url}/v1/models/bert").json()["model"]
        assert model["precision"] == "int8"


def test_cuda_without_a_gpu_exits_1_saying_how_to_fix_it(tmp_path: Path) -> None:
    env = {"MODEL_NAME": str(TINY_BERT_MLM), "ONNX_EXECUTION_PROVIDER": "CUDA"}
    log = _failed_start_log(env, tmp_path)
    assert "CUDA requested" in log
    assert "ONNX_EXECUTION_PROVIDER=CPU" in log
    # Not the model-source advice: the model itself was fine.
    assert "HF_ENDPOINT" not in log


def _failed_start_log(env: dict[str, str], tmp_path: Path, exit_code: int = 1) -> str:
    """The log of a server that must stop at start-up with `exit_code`."""
    with run_server(env, tmp_path, wait=False) as server:
        assert server.process.wait(timeout=60) == exit_code
        return server.log.read_text()
