"""A batcher that stops mid-service turns every health route red instead of hanging requests.

The server runs in this process (uvicorn on 127.0.0.1, in a thread) so the test can make the real
engine raise; nothing else is replaced.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from litestar import Litestar

from bert_api.app import create_app
from bert_api.settings import Settings
from bert_api.testing import free_port, wait_until_ready
from bert_runtime.serving.engine import Engine
from bert_runtime.testutil.models import TINY_BERT_MLM


class EngineStopped(BaseException):
    """Not an Exception: it escapes the batcher's per-item retry, as an interpreter stop would."""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Litestar]]:
    port = free_port()
    settings = Settings(
        model_name=str(TINY_BERT_MLM), model_cache_dir=str(tmp_path), port=port, huge_pages=False
    )
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    if not wait_until_ready(url, 60):
        raise TimeoutError("the in-process server never became ready")
    try:
        yield url, app
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_a_stopped_batcher_fails_requests_and_every_health_route(
    served: tuple[str, Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _app = served
    assert httpx.post(f"{url}/embed", json={"inputs": "before"}, timeout=30).status_code == 200

    def stop(*_: object) -> None:
        raise EngineStopped()

    monkeypatch.setattr(Engine, "run", stop)
    failed = httpx.post(f"{url}/embed", json={"inputs": "during"}, timeout=30)
    assert failed.status_code == 503
    assert failed.headers["Retry-After"]
    after = httpx.post(f"{url}/embed", json={"inputs": "after"}, timeout=30)
    assert after.status_code == 503, "a request after the stop must not hang or 500"
    live = httpx.get(f"{url}/v2/health/live", timeout=5)
    assert live.status_code == 503
    assert "EngineStopped" in live.json()["error"]
    assert httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 503
    assert httpx.get(f"{url}/health", timeout=5).json()["status"] == "failed"
