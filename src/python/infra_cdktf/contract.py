"""
What the app knows about the service: names, port, paths and the image's layout. The service's
own settings are environment variables of bert_api; contract_test.py checks every name used here
against bert_api's Settings, so a rename there fails here instead of in a cluster.
"""

from __future__ import annotations

APP = "bert-inference"
NAMESPACE = "bert-inference"
MONITORING_NAMESPACE = "monitoring"
INGRESS_NAMESPACE = "ingress"
CERT_MANAGER_NAMESPACE = "cert-manager"
GPU_NAMESPACE = "gpu"

HTTP_PORT = 8000
# bert_api serves /metrics on a port of its own (its METRICS_PORT setting; the HTTP port then
# answers 404 there): the ConfigMap passes METRICS_PORT, the Service and ServiceMonitor use a
# separate `metrics` port, and the NetworkPolicy lets only Prometheus reach it.
METRICS_PORT = 9464
METRICS_PORT_SETTING = "METRICS_PORT"
METRICS_PATH = "/metrics"
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"

# Inside the API image (deploy/): the prepare CLI, and where the model cache volume is mounted.
PREPARE_COMMAND = "/app/bin/prepare"
MODEL_VOLUME_PATH = "/models"
PREPARED_MODEL_DIR = "/models/prepared"
HUB_CACHE_DIR = "/models/hub"

# Prometheus series the autoscaler scales on (bert_api.metrics): sequences waiting in the batcher
# and requests being handled, both gauges per pod.
QUEUE_DEPTH_METRIC = "inference_queue_depth"
ACTIVE_REQUESTS_METRIC = "inference_active_requests"

# What the public endpoint routes to the service (path prefixes); everything else, /metrics and
# the OpenAPI pages under /docs among it, answers 404 at the edge. contract_test.py checks that
# every route bert_api serves is either public here or private below.
PUBLIC_PATH_PREFIXES = (
    "/v1/",
    "/v2/",
    "/embed",
    "/classify",
    "/fill-mask",
    "/rerank",
    "/tokenize",
    "/health",
)
PRIVATE_PATH_PREFIXES = (METRICS_PATH, "/docs")

# Node pools (cluster stack): labels the nodes carry, and the taint that keeps all but GPU work
# off the GPU nodes.
POOL_LABEL = "bert-serve/pool"
GPU_POOL = "gpu"
PLATFORM_POOL = "platform"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
