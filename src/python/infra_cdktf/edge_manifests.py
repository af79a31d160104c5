"""
TLS at the edge: Let's Encrypt ClusterIssuers (cert-manager) and the Ingresses for
inference.<domain>, grafana.<domain> and prometheus.<domain>, with the seed's behaviours
(HTTPS redirect, 50 MB bodies, 300 s read timeout) as F5 NGINX Ingress Controller annotations.
"""

from __future__ import annotations

from typing import Any

from infra_cdktf import charts, contract
from infra_cdktf.inference_manifests import LABELS, Manifest
from infra_cdktf.settings import ISSUERS, AppSettings

ACME_SERVERS = {
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "letsencrypt-prod": "https://acme-v02.api.letsencrypt.org/directory",
}
PROMETHEUS_BASIC_AUTH_SECRET = "prometheus-basic-auth"
EDGE_ANNOTATIONS = {
    "ingress.kubernetes.io/ssl-redirect": "true",
    "nginx.org/hsts": "true",
    "nginx.org/client-max-body-size": "50m",
    "nginx.org/proxy-read-timeout": "300s",
    "nginx.org/proxy-send-timeout": "300s",
}


def cluster_issuer(name: str, email: str) -> Manifest:
    assert name in ISSUERS
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": name, "labels": dict(LABELS)},
        "spec": {
            "acme": {
                "server": ACME_SERVERS[name],
                "email": email,
                "privateKeySecretRef": {"name": f"{name}-account-key"},
                "solvers": [{"http01": {"ingress": {"ingressClassName": charts.INGRESS_CLASS}}}],
            }
        },
    }


def _ingress(
    settings: AppSettings,
    *,
    name: str,
    namespace: str,
    subdomain: str,
    service: str,
    port: int,
    extra_annotations: dict[str, str] | None = None,
) -> Manifest:
    host = settings.host(subdomain)
    annotations = {"cert-manager.io/cluster-issuer": settings.tls_issuer, **EDGE_ANNOTATIONS}
    annotations |= extra_annotations or {}
    backend: dict[str, Any] = {"service": {"name": service, "port": {"number": port}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(LABELS),
            "annotations": annotations,
        },
        "spec": {
            "ingressClassName": charts.INGRESS_CLASS,
            "tls": [{"hosts": [host], "secretName": f"{name}-tls"}],
            "rules": [
                {
                    "host": host,
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ],
        },
    }


def ingresses(settings: AppSettings) -> list[Manifest]:
    return [
        _ingress(
            settings,
            name="bert-inference",
            namespace=contract.NAMESPACE,
            subdomain="inference",
            service=contract.APP,
            port=contract.HTTP_PORT,
        ),
        _ingress(
            settings,
            name="grafana",
            namespace=contract.MONITORING_NAMESPACE,
            subdomain="grafana",
            service=charts.GRAFANA_SERVICE,
            port=80,
        ),
        # Prometheus has no login of its own: the ingress asks for one (generated password).
        _ingress(
            settings,
            name="prometheus",
            namespace=contract.MONITORING_NAMESPACE,
            subdomain="prometheus",
            service=charts.PROMETHEUS_SERVICE,
            port=charts.PROMETHEUS_PORT,
            extra_annotations={
                "nginx.org/basic-auth-secret": PROMETHEUS_BASIC_AUTH_SECRET,
                "nginx.org/basic-auth-realm": "Prometheus",
            },
        ),
    ]


def all_objects(settings: AppSettings) -> list[Manifest]:
    issuers = [cluster_issuer(name, settings.acme_email) for name in ISSUERS]
    return [*issuers, *ingresses(settings)]
