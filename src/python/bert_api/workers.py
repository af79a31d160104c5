"""WORKERS > 1: one engine process with the model and its batch queue, and N front-end workers.

The process `serve` starts holds the model (ModelHost) and serves its batch queue to the workers
over a Unix socket (EngineServer). It binds the HTTP socket and starts the workers (spawned
processes, each a uvicorn server on that shared socket), which decode, tokenize and encode on their
own cores and hand token ids to the engine: one model in memory and one queue per device, so
batches stay full, and front-end work spread over the cores. A worker that dies is started again.
On SIGTERM or SIGINT the engine refuses new work, the workers drain (server.py) while the engine
finishes what they sent, then everything exits. Metrics: prometheus_client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set by `serve` before anything imports it), so any scrape adds up all
processes.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path

from prometheus_client import multiprocess, start_http_server

from bert_api.app import serving_asgi
from bert_api.engine_server import EngineServer
from bert_api.logs import configure_logging
from bert_api.metrics import ServiceMetrics
from bert_api.model_host import ModelHost
from bert_api.server import DrainingServer, uvicorn_config
from bert_api.settings import Settings
from bert_api.worker_host import WorkerHost

logger = logging.getLogger(__name__)


def worker_main(
    settings: Settings, listen: socket.socket, engine_socket: Path, engine_pid: int
) -> None:
    """A front-end worker: the app, on the shared socket, reaching the engine over its own."""
    os.setpgid(0, 0)  # the terminal's Ctrl-C goes to `serve`, which tells each worker once
    _stop_with(engine_pid)
    configure_logging(settings)
    metrics = ServiceMetrics(settings.served_model_name)
    host = WorkerHost(settings, metrics, engine_socket, freeze_heap=True)
    app = serving_asgi(settings, host)
    server = DrainingServer(uvicorn_config(app, settings), host, settings.shutdown_grace_seconds)
    server.run(sockets=[listen])


def _stop_with(engine_pid: int) -> None:
    """
    SIGTERM this worker when the engine process (its parent) dies, even by SIGKILL or the OOM
    killer: an orphaned worker would hold the port and answer 503 for ever. Linux only
    (prctl PR_SET_PDEATHSIG); elsewhere the worker answers 503 until stopped.
    """
    if sys.platform != "linux":
        return
    set_parent_death_signal = 1  # PR_SET_PDEATHSIG, <linux/prctl.h>
    ctypes.CDLL(None, use_errno=True).prctl(set_parent_death_signal, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != engine_pid:  # it died before the request above
        os.kill(os.getpid(), signal.SIGTERM)


def _listening_socket(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Workers:
    """The worker processes: started, restarted when one dies, stopped on shutdown."""

    def __init__(self, settings: Settings, listen: socket.socket, engine_socket: Path) -> None:
        self._args = (settings, listen, engine_socket, os.getpid())
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[BaseProcess] = []
        self._count = settings.worker_count

    def start(self) -> None:
        self._processes = [self._spawn(index) for index in range(self._count)]

    def _spawn(self, index: int) -> BaseProcess:
        process = self._context.Process(
            target=worker_main, args=self._args, name=f"bert-serve-worker-{index}", daemon=False
        )
        process.start()
        return process

    def restart_dead(self) -> None:
        for index, process in enumerate(self._processes):
            if not process.is_alive():
                logger.error("worker %d exited (%s): starting it again", index, process.exitcode)
                if process.pid is not None:
                    multiprocess.mark_process_dead(process.pid)  # type: ignore[no-untyped-call]
                self._processes[index] = self._spawn(index)

    async def stop(self, grace_s: float) -> None:
        for process in self._processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s + 5
        while any(p.is_alive() for p in self._processes) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for process in self._processes:
            if process.is_alive():
                logger.error("worker %s did not stop in time: killing it", process.name)
                process.kill()
            process.join(timeout=5)


async def serve_with_workers(
    settings: Settings, runtime_dir: Path, on_load_failure: Callable[[BaseException], None]
) -> None:
    """Run the engine and its workers until a signal (or the model's failure to load)."""
    stop = asyncio.Event()

    def failed(error: BaseException) -> None:
        on_load_failure(error)
        stop.set()

    metrics = ServiceMetrics(settings.served_model_name)
    host = ModelHost(settings, metrics, failed, freeze_heap=True)
    engine = EngineServer(host, runtime_dir / "engine.sock")
    await engine.start()
    host.start()
    if settings.separate_metrics_port:
        start_http_server(settings.metrics_port, settings.host, registry=metrics.scrape_registry())
    workers = Workers(settings, _listening_socket(settings), runtime_dir / "engine.sock")
    workers.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    logger.info(
        "serving %s on %s:%d with %d workers",
        settings.model_name,
        settings.host,
        settings.port,
        settings.worker_count,
    )
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            workers.restart_dead()
    host.begin_drain()  # the workers answer 503 from now; what they sent still runs
    await workers.stop(settings.shutdown_grace_seconds)
    await engine.close()
    await host.close()
