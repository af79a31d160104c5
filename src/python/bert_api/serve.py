"""`serve`: read settings from the environment, then run the app until SIGTERM.

On SIGTERM/SIGINT the server drains (server.py) within SHUTDOWN_GRACE_SECONDS and the process
exits 0. If the model cannot be loaded, it exits 1 with a message saying how to point it at a
local model or a mirror.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path

from bert_api.logs import configure_logging
from bert_api.settings import Settings, SettingsError, load_settings
from bert_runtime.cpus import cpu_budget
from bert_runtime.errors import ConfigError, ModelSourceError, ProviderUnavailableError
from bert_runtime.huge_pages import huge_pages_status, reexec_with_huge_pages

logger = logging.getLogger("bert_api")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings(os.environ)
    except SettingsError as error:
        print(f"serve: {error}", file=sys.stderr)
        return 2
    tokenize_on_the_calling_thread(os.environ)  # before any worker starts: they inherit it
    if settings.huge_pages:
        reexec_with_huge_pages()  # returns where it cannot help or the tunable is already set
    configure_logging(settings)
    pages = huge_pages_status()
    logger.info(
        "transparent huge pages: kernel %s, malloc tunable %s",
        pages.kernel_mode,
        "set" if pages.malloc_tunable_set else "not set",
    )
    logger.info("CPUs: %s", cpu_budget().describe())
    failure: list[BaseException] = []
    with tempfile.TemporaryDirectory(prefix="bert-serve-") as runtime:
        if settings.worker_count > 1:
            _serve_with_workers(settings, Path(runtime), failure.append)
        else:
            _serve_in_one_process(settings, failure)
    if failure:
        print(
            f"serve: could not load {settings.model_name!r}: {failure[0]}"
            + _load_failure_hint(failure[0]),
            file=sys.stderr,
        )
        return 1
    return 0


def tokenize_on_the_calling_thread(environ: MutableMapping[str, str]) -> None:
    """
    TOKENIZERS_PARALLELISM=false unless the user set it. The service spreads work over its
    worker processes and the batch queue; tokenizers' own pool (a thread per CPU, in every
    worker) only added CPU: 12% more a text at 32 texts a request with 2 workers, and 12% less
    throughput (docs/BENCHMARKS.md, host path).
    """
    environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _serve_in_one_process(settings: Settings, failure: list[BaseException]) -> None:
    # Imported here: with workers, prometheus_client must see PROMETHEUS_MULTIPROC_DIR first.
    from prometheus_client import start_http_server

    from bert_api.app import create_asgi
    from bert_api.server import DrainingServer, uvicorn_config

    server: DrainingServer | None = None

    def on_load_failure(error: BaseException) -> None:
        failure.append(error)
        if server is not None:
            server.should_exit = True

    app, host = create_asgi(settings, on_load_failure)
    if settings.separate_metrics_port:
        # prometheus_client's own server, on a thread: scrapes never wait on the event loop.
        registry = host.metrics.scrape_registry()
        start_http_server(settings.metrics_port, settings.host, registry=registry)
        logger.info("metrics on %s:%d/metrics", settings.host, settings.metrics_port)
    server = DrainingServer(uvicorn_config(app, settings), host, settings.shutdown_grace_seconds)
    logger.info("serving %s on %s:%d", settings.model_name, settings.host, settings.port)
    server.run()


def _serve_with_workers(
    settings: Settings, runtime: Path, on_load_failure: Callable[[BaseException], None]
) -> None:
    metrics_dir = runtime / "metrics"
    metrics_dir.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # before the import below
    from bert_api.workers import serve_with_workers

    # The engine process's loop carries every worker's submissions: uvloop, as uvicorn's workers
    # use, where installed.
    with asyncio.Runner(loop_factory=_fastest_loop()) as runner:
        runner.run(serve_with_workers(settings, runtime, on_load_failure))


def _fastest_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _load_failure_hint(error: BaseException) -> str:
    """What to change, for the failures a setting can fix; nothing for the rest."""
    if isinstance(error, ModelSourceError):
        return (
            "\nSet MODEL_NAME to a local model directory (Hugging Face layout or one made by "
            "`prepare`), set HF_ENDPOINT to a reachable mirror, or run once with network access "
            "to fill the cache (HF_HOME)."
        )
    if isinstance(error, ProviderUnavailableError):
        return (
            "\nRun on a node with an NVIDIA GPU and driver (R580 or newer for CUDA 13), or set "
            "ONNX_EXECUTION_PROVIDER=CPU to serve on CPU."
        )
    if isinstance(error, ConfigError):
        return (
            "\nLeave PRECISION empty to serve a prepared directory at its own precision, or pick "
            "one that ONNX_EXECUTION_PROVIDER runs (fp32 or int8 on CPU, fp32 or fp16 on CUDA)."
        )
    return ""


if __name__ == "__main__":
    sys.exit(main())
