"""The docs pages work offline, and the small things a newcomer met on the way there."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bert_api.docs_pages import ASSETS_PATH, MEDIA_TYPES
from bert_api.testing import RunningServer, run_server
from bert_runtime.testutil.models import TINY_BERT_MLM

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server({"MODEL_NAME": str(TINY_BERT_MLM)}, tmp_path_factory.mktemp("docs")) as up:
        yield up


@pytest.mark.parametrize("page", ["/docs", "/docs/swagger"])
def test_docs_pages_load_every_script_and_style_from_the_service(
    server: RunningServer, page: str
) -> None:
    html = httpx.get(f"{server.url}{page}").text
    assert "cdn." not in html and "https://" not in html, html
    for name in MEDIA_TYPES:
        assert f"{ASSETS_PATH}/{name}" in html, name
        asset = httpx.get(f"{server.url}{ASSETS_PATH}/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["content-type"].startswith(MEDIA_TYPES[name])
        assert len(asset.content) > 500, name


def test_an_unknown_docs_asset_is_a_json_404(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}{ASSETS_PATH}/../../etc/passwd")
    assert response.status_code == 404
    response = httpx.get(f"{server.url}{ASSETS_PATH}/swagger-ui.js.map")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


def test_redoc_is_a_json_404_like_any_unknown_route(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/docs/redoc")
    assert response.status_code == 404, server.log.read_text()[-3000:]
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["type"] == "not_found"


def test_metrics_content_type_names_its_charset_once(server: RunningServer) -> None:
    content_type = httpx.get(f"{server.url}/metrics").headers["content-type"]
    assert content_type.count("charset") == 1, content_type
    assert content_type.startswith("text/plain; version=0.0.4"), content_type


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_docs_render_in_a_browser_with_every_other_host_blocked(
    server: RunningServer, tmp_path: Path
) -> None:
    """Headless Chromium may reach 127.0.0.1 only; Swagger UI must still list the operations."""
    assert CHROMIUM is not None
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            # Every host name but loopback fails to resolve: a CDN script would not load.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9",
            "--proxy-bypass-list=127.0.0.1",
            # Let the page's scripts run before the DOM is dumped.
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{server.url}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    dom = done.stdout
    # The page's HTML holds the schema as a script, so paths alone prove nothing: these elements
    # exist only once Swagger UI's script has run and drawn one block per operation.
    for path in ("/embed", "/fill-mask", "/v1/embeddings", "/v2/models/{model_name}/infer"):
        assert f'data-path="{path}"' in dom, f"{path} not rendered:\n{dom[-3000:]}"
    assert 'class="opblock-summary-description">Sentence embeddings' in dom
