"""Locust user for bert-serve endpoints; loadkit's load runner uses it, and so can plain Locust:

    PYTHONPATH=src/python locust -f src/python/loadkit/locustfile.py --host http://127.0.0.1:8000

Settings for plain Locust come from environment variables: LOADKIT_ROUTE (v1 | embed | openai | v2),
LOADKIT_MODEL (bert), LOADKIT_MIX (single=6,batch=3,long=1), LOADKIT_TIMEOUT (seconds, 60).
"""

from __future__ import annotations

import os
import random
import threading

from locust import FastHttpUser, constant, task
from locust.exception import StopUser

from loadkit.workload import DEFAULT_MIX, Mix, request_for, sample_texts


class TicketBox:
    """Hands out exactly `total` request tickets across all users (gevent or threads)."""

    def __init__(self, total: int) -> None:
        self._left = total
        self._lock = threading.Lock()

    def claim(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True


class BertUser(FastHttpUser):
    """Sends inference requests of a weighted mix of kinds, back to back."""

    abstract = False
    wait_time = constant(0)
    route = os.environ.get("LOADKIT_ROUTE", "v1")
    model = os.environ.get("LOADKIT_MODEL", "bert")
    mix = Mix.parse(os.environ.get("LOADKIT_MIX", DEFAULT_MIX))
    network_timeout = float(os.environ.get("LOADKIT_TIMEOUT", "60"))
    connection_timeout = network_timeout
    # Set by run_load for a fixed number of requests; None runs until stopped.
    tickets: TicketBox | None = None
    rng = random.Random(0)

    @task
    def infer(self) -> None:
        if self.tickets is not None and not self.tickets.claim():
            raise StopUser()
        kind = self.mix.pick(self.rng)
        path, body = request_for(self.route, sample_texts(kind, self.rng), self.model)
        self.client.post(path, json=body, name=f"{self.route}:{kind}")
