"""Prometheus metrics of the service, with the seed deployment's names and meanings kept."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from bert_api.errors import ERROR_TYPE_BY_STATUS
from bert_runtime.serving.batch_protocol import DropReason

# The seed's buckets plus finer low buckets: CPU and GPU requests often finish in a few
# milliseconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
QUEUE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
EXPECTED_STATUSES = (
    "200",
    "400",
    "401",
    "404",
    "405",
    "413",
    "415",
    "422",
    "429",
    "499",
    "500",
    "503",
)
ERROR_TYPES = (*ERROR_TYPE_BY_STATUS.values(), "internal_error")


class ServiceMetrics:
    """All metrics, in a registry of their own (tests start several apps in one process)."""

    def __init__(self, model: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "inference_requests", "Inference requests by outcome.", ["status"], registry=r
        )
        self.request_duration = Histogram(
            "inference_request_duration_seconds",
            "Time to answer an inference request.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        ).labels(model=model)
        self.tokens = Counter(
            "inference_tokens_processed",
            "Real (unpadded) tokens run through the model.",
            registry=r,
        )
        self.batch_size = Histogram(
            "inference_batch_size",
            "Sequences per executed batch.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        # With WORKERS > 1 each process writes its own values (prometheus_client's multiprocess
        # mode) and a scrape adds them up: requests being handled are summed over the workers;
        # the engine process alone writes the queue's and the model's gauges (the max of one).
        self.active_requests = Gauge(
            "inference_active_requests",
            "Inference requests being handled now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.queue_depth = Gauge(
            "inference_queue_depth",
            "Sequences waiting in the batcher's queue.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.queue_capacity = Gauge(
            "inference_queue_capacity",
            "Most sequences the batcher queue holds (MAX_QUEUE_SIZE).",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.expected_wait = Gauge(
            "inference_queue_expected_wait_seconds",
            "Estimated wait before a text submitted now would start (queued work at the "
            "measured speed); requests whose budget is shorter get 429.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.dropped_texts = Counter(
            "inference_dropped_texts",
            "Texts that left the queue without running: deadline (waited past their budget) "
            "or cancelled (their client left, or their request failed).",
            ["reason"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "inference_queue_wait_seconds",
            "Longest wait in the queue of the sequences of each batch.",
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.inference_time = Histogram(
            "inference_batch_duration_seconds",
            "Model execution time per batch.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.padding_ratio = Histogram(
            "inference_padding_ratio",
            "Padded tokens / real tokens per batch (1 means no padding).",
            buckets=(1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0),
            registry=r,
        )
        self.model_load_seconds = Gauge(
            "inference_model_load_seconds",
            "Time to prepare, load and warm the model.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.model_ready = Gauge(
            "inference_model_ready",
            "1 when the model serves.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.errors = Counter(
            "inference_errors", "Failed requests by error type.", ["type"], registry=r
        )
        # Series exist at 0 from the start, so rate() sees the first error and dashboards show 0,
        # not no data.
        for status in EXPECTED_STATUSES:
            self.requests.labels(status=status)
        for error_type in ERROR_TYPES:
            self.errors.labels(type=error_type)
        for reason in (DropReason.DEADLINE, DropReason.CANCELLED):
            self.dropped_texts.labels(reason=reason)

    def scrape_registry(self) -> CollectorRegistry:
        """What a scrape reads: this process's metrics, or every process's added up."""
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            return self.registry
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry

    def exposition(self) -> bytes:
        return generate_latest(self.scrape_registry())
