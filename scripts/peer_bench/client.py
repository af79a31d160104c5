"""The load client (wrk), and the correctness check's plain HTTP calls and reference embeddings.

Why wrk and not a Python client: on a 2-core host the client shares the cores with the server, and a
client in Python (httpx, aiohttp) spends several times the CPU per request that wrk does, so it
would cap and skew exactly the single-text shapes that compare the servers' host paths. wrk's Lua
hooks give every request its own body at the cost of one table lookup (wrk_post.lua formats them
all up front), and it is the client issue 30's numbers were taken with. It is closed-loop (each
connection sends its next request when the last is answered), so latency is per request under that
concurrency, not under a fixed arrival rate.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float64]
LUA = Path(__file__).resolve().parent / "wrk_post.lua"
MARK = "PEER_BENCH "


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    status_errors: int
    timeouts: int

    @property
    def errors(self) -> int:
        return self.socket_errors + self.status_errors + self.timeouts


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (Debian/Ubuntu)")
    return found


def wrk_version() -> str:
    run = subprocess.run([wrk_path(), "-v"], capture_output=True, text=True, check=False)
    return (run.stdout + run.stderr).split(" [")[0].strip()


def run_wrk(
    url: str, bodies: Path, connections: int, seconds: float, budget: float | None = None
) -> WrkResult:
    """POST the bodies (cycled) over `connections` keep-alive connections for `seconds`; with
    `budget`, each request carries it as X-Request-Timeout (bert-serve's client time budget)."""
    threads = min(2, connections)
    argv = [wrk_path(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    argv += ["--timeout", "120s", "-s", str(LUA), url, "--", str(bodies), str(threads)]
    argv += [] if budget is None else [f"{budget:g}"]
    run = subprocess.run(argv, capture_output=True, text=True, check=False)
    lines = [line for line in run.stdout.splitlines() if line.startswith(MARK)]
    if run.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({run.returncode}): {run.stdout[-2000:]}{run.stderr}")
    found = json.loads(lines[-1][len(MARK) :])
    return WrkResult(
        requests=found["requests"],
        seconds=found["duration_us"] / 1e6,
        p50_ms=found["p50_us"] / 1e3,
        p99_ms=found["p99_us"] / 1e3,
        socket_errors=found["socket_errors"],
        status_errors=found["status_errors"],
        timeouts=found["timeouts"],
    )


def embed(url: str, texts: list[str] | str, model: str, budget: float = 600) -> Vectors:
    """One OpenAI embeddings call, rows in input order; `budget` seconds for bert-serve to start it
    (X-Request-Timeout: its default refuses work it expects to wait over 5 s, as on a busy host).
    """
    body = json.dumps({"model": model, "input": texts}).encode()
    headers = {"Content-Type": "application/json", "X-Request-Timeout": f"{budget:g}"}
    request = urllib.request.Request(url, body, headers)
    try:
        with urllib.request.urlopen(request, timeout=budget) as answer:
            found = json.loads(answer.read())
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"{url} answered {error.code}: {error.read()[:300]!r}") from error
    rows = sorted(found["data"], key=lambda row: row["index"])
    return np.asarray([row["embedding"] for row in rows], dtype=np.float64)


def reference(model_dir: Path, texts: list[str]) -> Vectors:
    """sentence-transformers' embeddings: what every server must return."""
    from sentence_transformers import SentenceTransformer  # heavy: imported when needed

    model = SentenceTransformer(str(model_dir), device="cpu")
    return np.asarray(model.encode(texts, batch_size=8), dtype=np.float64)


def min_cosine(found: Vectors, expected: Vectors) -> float:
    """The worst row's cosine similarity (-1 where the shapes differ)."""
    if found.shape != expected.shape:
        return -1.0
    dots = np.sum(found * expected, axis=1)
    norms = np.linalg.norm(found, axis=1) * np.linalg.norm(expected, axis=1)
    return float(np.min(dots / np.maximum(norms, 1e-12)))
