"""`run_load`: a bounded load test with Locust (FastHttpUser) run headless in this process.

Importing Locust monkey-patches the process with gevent, so Locust is imported only when a load
runs. Outcomes are recorded per request (Locust's request event), so counts are exact and
percentiles are computed from every latency, not from Locust's approximate buckets.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loadkit.outcomes import Outcome
from loadkit.report import LoadReport, Thresholds, build_report
from loadkit.workload import DEFAULT_MIX, ROUTES, Mix


def run_load(
    endpoint: str,
    *,
    requests: int | None = None,
    concurrency: int = 8,
    duration_s: float | None = None,
    rate: float | None = None,
    route: str = "v1",
    model: str = "bert",
    mix: str = DEFAULT_MIX,
    timeout_s: float = 60.0,
    thresholds: Thresholds | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoadReport:
    """Send `requests` requests (or run for `duration_s`) from `concurrency` users; returns the
    report.

    `rate` caps the total request rate (requests/s); without it users send back to back.
    """
    if requests is None and duration_s is None:
        raise ValueError("give a number of requests, a duration, or both")
    if requests is not None and requests < 1:
        raise ValueError("requests must be >= 1")
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r} (use {', '.join(ROUTES)})")
    parsed_mix = Mix.parse(mix)

    import gevent
    from gevent.event import Event
    from locust import constant, constant_throughput
    from locust.env import Environment

    from loadkit.locustfile import BertUser, TicketBox

    user_class = type(
        "LoadkitUser",
        (BertUser,),
        {
            "route": route,
            "model": model,
            "mix": parsed_mix,
            "network_timeout": timeout_s,
            "connection_timeout": timeout_s,
            "tickets": TicketBox(requests) if requests is not None else None,
            "wait_time": constant_throughput(rate / concurrency) if rate else constant(0),
        },
    )
    outcomes: list[Outcome] = []
    finished = Event()

    def on_request(
        response_time: float, exception: BaseException | None, response: object, **_: object
    ) -> None:
        status = int(getattr(response, "status_code", 0) or 0) or None
        outcomes.append(Outcome(float(response_time), status, None if status else exception))
        if requests is not None and len(outcomes) >= requests:
            finished.set()

    environment = Environment(user_classes=[user_class], host=endpoint.rstrip("/"))
    environment.events.request.add_listener(on_request)  # type: ignore[no-untyped-call]
    runner = environment.create_local_runner()
    started = time.perf_counter()

    def show_progress() -> None:
        if progress is not None:
            elapsed = time.perf_counter() - started
            failed = sum(1 for o in outcomes if not o.ok)
            total = f"/{requests}" if requests else ""
            progress(
                f"{len(outcomes)}{total} requests, {len(outcomes) / elapsed:.1f} req/s, "
                f"{failed} failed, {elapsed:.0f}s"
            )

    def report_progress() -> None:
        while not finished.is_set():
            gevent.sleep(0.5)
            show_progress()

    ticker = gevent.spawn(report_progress)
    runner.start(concurrency, spawn_rate=concurrency)
    finished.wait(timeout=duration_s)
    elapsed = time.perf_counter() - started
    finished.set()
    runner.quit()
    ticker.kill()
    show_progress()
    return build_report(
        endpoint=endpoint,
        route=route,
        concurrency=concurrency,
        planned_requests=requests,
        outcomes=list(outcomes),
        duration_s=elapsed,
        thresholds=thresholds or Thresholds(),
    )
