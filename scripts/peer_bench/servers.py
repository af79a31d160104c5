"""How each compared server is started, told ready, charged for CPU and stopped.

Every server runs on loopback in its own session (process group), so stopping it and adding up its
CPU time both cover every process it starts (uvicorn workers, bert-serve's front-end workers). CPU
time is utime + stime (+ cutime + cstime, for children already reaped) from /proc/<pid>/stat, summed
over the processes of that session: what the server spent, whatever the client and the rest of a
shared host did meanwhile.

All servers serve OpenAI's `/v1/embeddings` under the model name MODEL, so one client and one set of
request bodies fit them all.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

MODEL = "peer"
SERVER_KEYS = ("bert-serve", "infinity-optimum", "infinity-torch", "fastapi-st")
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ServerSpec:
    key: str
    label: str
    argv: list[str]
    env: dict[str, str]
    port: int
    health_path: str
    cwd: Path = REPO

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Running:
    spec: ServerSpec
    process: subprocess.Popen[bytes]
    log: Path
    notes: list[str]  # remarks for the report (the row's notes)
    started: float = field(default_factory=time.monotonic)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _peer_env(work: Path) -> dict[str, str]:
    """No Hub (the models are local), no telemetry, infinity's ONNX cache under the work dir."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", DO_NOT_TRACK="1", HF_HUB_CACHE=str(work / "hf-cache"))
    return env


def infinity(engine: str, venv: Path, model: Path, work: Path, pooling: str) -> ServerSpec:
    """infinity-emb v2 at its defaults, except `--pooling-method` (see peer_bench's docstring)."""
    port = free_port()
    argv = [str(venv / "bin" / "infinity_emb"), "v2", "--model-id", str(model)]
    argv += ["--served-model-name", MODEL, "--engine", engine, "--device", "cpu"]
    argv += ["--pooling-method", pooling, "--url-prefix", "/v1"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    key = f"infinity-{engine}"
    label = f"infinity-emb `--engine {engine}`" + ("" if pooling == "mean" else f" ({pooling})")
    return ServerSpec(key, label, argv, _peer_env(work), port, "/health")


def fastapi_st(venv: Path, model: Path, work: Path) -> ServerSpec:
    port = free_port()
    argv = [str(venv / "bin" / "python"), str(HERE / "fastapi_st_server.py"), str(model)]
    argv += ["--port", str(port)]
    label = "FastAPI + sentence-transformers (no batching)"
    return ServerSpec("fastapi-st", label, argv, _peer_env(work), port, "/health")


def bert_serve(python: Path, model: Path, work: Path, extra_env: dict[str, str]) -> ServerSpec:
    """`python -m bert_api.serve` from this checkout's sources, fp32, max length as sentence-
    transformers' (256; no text here is longer than 120 tokens), prepared models under the work dir.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(
        PYTHONPATH=str(_bert_serve_sources(work)),
        MODEL_NAME=str(model),
        MODEL_CACHE_DIR=str(work / "bert-serve-cache"),
        SERVED_MODEL_NAME=MODEL,
        PRECISION="fp32",
        MAX_SEQUENCE_LENGTH="256",
        HOST="127.0.0.1",
        PORT=str(port),
    )
    env.update(extra_env)
    label = "bert-serve fp32" + "".join(f", {k}={v}" for k, v in sorted(extra_env.items()))
    argv = [str(python), "-m", "bert_api.serve"]
    return ServerSpec("bert-serve", label, argv, env, port, "/v2/health/ready")


def spec_for(
    key: str,
    model: Path,
    work: Path,
    pooling: str,
    bert_serve_python: Path | None,
    bert_serve_env: dict[str, str],
) -> ServerSpec:
    """The server `key` (SERVER_KEYS) serving the checkpoint `model` (its ONNX export beside it)."""
    venv, onnx = work / "venv", model.with_name(model.name + "-onnx")
    if key == "bert-serve":
        if bert_serve_python is None:
            raise SystemExit("--bert-serve-python is needed to run bert-serve")
        return bert_serve(bert_serve_python, model, work, bert_serve_env)
    if key == "infinity-optimum":
        return infinity("optimum", venv, onnx, work, pooling)
    if key == "infinity-torch":
        return infinity("torch", venv, model, work, pooling)
    if key == "fastapi-st":
        return fastapi_st(venv, model, work)
    raise ValueError(f"unknown server {key!r}; known: {', '.join(SERVER_KEYS)}")


def _bert_serve_sources(work: Path) -> Path:
    """src/python, or where Swagger UI's tarball is missing there (Pants adds it to what it builds),
    a mirror of it made of symlinks plus setup_peers.sh's download: the code run is this checkout's.
    """
    src = REPO / "src" / "python"
    if any((src / "bert_api").glob("swagger-ui-dist-*.tgz")):
        return src
    tarballs = sorted(work.glob("swagger-ui-dist-*.tgz"))
    if not tarballs:
        raise SystemExit(f"no swagger-ui-dist tarball in {work}: run setup_peers.sh {work}")
    stage = work / "bert-serve-src"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "bert_api").mkdir(parents=True)
    for entry in src.iterdir():
        if entry.name != "bert_api":
            (stage / entry.name).symlink_to(entry)
    for entry in (src / "bert_api").iterdir():
        if entry.name != "__pycache__":
            (stage / "bert_api" / entry.name).symlink_to(entry)
    for tarball in tarballs:
        (stage / "bert_api" / tarball.name).symlink_to(tarball)
    return stage


def start(spec: ServerSpec, logs: Path, notes: list[str]) -> Running:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{spec.key}-{spec.port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            spec.argv,
            env=spec.env,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Running(spec, process, log, notes)


def wait_ready(server: Running, timeout: float) -> float:
    """Seconds until the health route answers 200; raises with the log's tail if it never does."""
    url = server.spec.base_url + server.spec.health_path
    while time.monotonic() - server.started < timeout:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.spec.key} exited: {tail(server.log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return time.monotonic() - server.started
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"{server.spec.key} not ready after {timeout:.0f} s: {tail(server.log)}")


def stop(server: Running, grace: float = 30) -> None:
    """SIGTERM to the server's process group, SIGKILL after `grace` seconds."""
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


def cpu_seconds(server: Running) -> float:
    """CPU time of every live process in the server's session, children already reaped included."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        # After the command: state ppid pgrp session ... utime(14) stime cutime cstime(17).
        if int(fields[3]) == server.process.pid:
            total += sum(int(value) for value in fields[11:15])
    return total / TICKS


def wait_idle(server: Running, limit: float = 120, busy: float = 0.05) -> None:
    """Until the server uses under `busy` of a core (work queued by the last run is done)."""
    deadline = time.monotonic() + limit
    before = cpu_seconds(server)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(server)
        if now - before < busy * 0.5:
            return
        before = now


def tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
