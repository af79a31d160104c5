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
# The external LoadBalancer keeps the seed's name.
EXTERNAL_SERVICE = "bert-inference-external"

HTTP_PORT = 8000
METRICS_PATH = "/metrics"
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"

# Inside the API image (deploy/): the prepare CLI, and where the model cache volume is mounted.
PREPARE_COMMAND = "/app/bin/prepare"
MODEL_VOLUME_PATH = "/models"
PREPARED_MODEL_DIR = "/models/prepared"
HUB_CACHE_DIR = "/models/hub"

# Prometheus series the autoscaler scales on (bert_api.metrics).
QUEUE_DEPTH_METRIC = "inference_queue_depth"
