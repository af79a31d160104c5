"""
The public HTTPS endpoint: Let's Encrypt ClusterIssuers (cert-manager) and one F5 NGINX Ingress
Controller VirtualServer per host (inference., grafana., prometheus.).

Why VirtualServer and not Ingress (checked in nginx/kubernetes-ingress 5.5.4 and cert-manager
1.21.1): cert-manager's HTTP-01 solver creates a second Ingress for the host; with Ingresses the
controller gives a host to one resource and ignores the other (internal/k8s/configuration.go,
buildHostsAndResources), so the challenge is never served. With `-enable-cert-manager` the
controller turns the solver's Ingress (label acme.cert-manager.io/http01-solver=true) into a
route of the VirtualServer that owns the host (convertIngressToVSR), and makes the Certificate
from `tls.cert-manager`. The server-level HTTPS redirect also catches the challenge; with
`issue-temp-cert` cert-manager puts a temporary certificate in the secret first, so the
redirected request completes its handshake (Let's Encrypt and cert-manager's self-check follow
redirects to HTTPS without verifying the certificate).

HTTPS only: port 80 answers only with the redirect (and the challenge). The inference host
routes only the API's public paths (contract.PUBLIC_PATH_PREFIXES); /metrics, /docs and anything
else answer 404.
"""

from __future__ import annotations

import json
from typing import Any

from infra_cdktf import charts, contract
from infra_cdktf.inference_manifests import LABELS, Manifest
from infra_cdktf.settings import ISSUERS, AppSettings

ACME_SERVERS = {
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "letsencrypt-prod": "https://acme-v02.api.letsencrypt.org/directory",
}
VIRTUAL_SERVER_API = "k8s.nginx.org/v1"
PROMETHEUS_BASIC_AUTH_SECRET = "prometheus-basic-auth"
PROMETHEUS_BASIC_AUTH_POLICY = "prometheus-basic-auth"
HSTS = {"name": "Strict-Transport-Security", "value": "max-age=31536000", "always": True}
# The seed's edge behaviour: 50 MB bodies, 300 s read and send timeouts.
UPSTREAM_LIMITS = {"client-max-body-size": "50m", "read-timeout": "300s", "send-timeout": "300s"}
NOT_SERVED = {
    "code": 404,
    "type": "application/json",
    "body": json.dumps({"error": {"type": "not_found", "message": "not served on this endpoint"}}),
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
                # The solver's Ingress carries the controller's class; the controller merges it
                # into the VirtualServer of the same host.
                "solvers": [{"http01": {"ingress": {"ingressClassName": charts.INGRESS_CLASS}}}],
            }
        },
    }


def _proxy(upstream: str) -> dict[str, Any]:
    return {"proxy": {"upstream": upstream, "responseHeaders": {"add": [dict(HSTS)]}}}


def virtual_server(
    settings: AppSettings,
    *,
    name: str,
    namespace: str,
    subdomain: str,
    service: str,
    port: int,
    paths: tuple[str, ...] = ("/",),
    policies: tuple[str, ...] = (),
) -> Manifest:
    """HTTPS for one host; `paths` are routed to the service, anything else answers 404."""
    upstream = {"name": "backend", "service": service, "port": port, **UPSTREAM_LIMITS}
    routes: list[dict[str, Any]] = [{"path": path, "action": _proxy("backend")} for path in paths]
    if "/" not in paths:
        routes.append({"path": "/", "action": {"return": dict(NOT_SERVED)}})
    spec: dict[str, Any] = {
        "ingressClassName": charts.INGRESS_CLASS,
        "host": settings.host(subdomain),
        "tls": {
            "secret": f"{name}-tls",
            "redirect": {"enable": True, "code": 301},
            "cert-manager": {"cluster-issuer": settings.tls_issuer, "issue-temp-cert": True},
        },
        "upstreams": [upstream],
        "routes": routes,
    }
    if policies:
        spec["policies"] = [{"name": policy} for policy in policies]
    return {
        "apiVersion": VIRTUAL_SERVER_API,
        "kind": "VirtualServer",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)},
        "spec": spec,
    }


def prometheus_basic_auth_policy() -> Manifest:
    """Prometheus has no login of its own: the edge asks for one (generated password)."""
    return {
        "apiVersion": VIRTUAL_SERVER_API,
        "kind": "Policy",
        "metadata": {
            "name": PROMETHEUS_BASIC_AUTH_POLICY,
            "namespace": contract.MONITORING_NAMESPACE,
            "labels": dict(LABELS),
        },
        "spec": {
            "basicAuth": {"secret": PROMETHEUS_BASIC_AUTH_SECRET, "realm": "Prometheus"},
        },
    }


def virtual_servers(settings: AppSettings) -> list[Manifest]:
    return [
        virtual_server(
            settings,
            name="bert-inference",
            namespace=contract.NAMESPACE,
            subdomain="inference",
            service=contract.APP,
            port=contract.HTTP_PORT,
            paths=contract.PUBLIC_PATH_PREFIXES,
        ),
        virtual_server(
            settings,
            name="grafana",
            namespace=contract.MONITORING_NAMESPACE,
            subdomain="grafana",
            service=charts.GRAFANA_SERVICE,
            port=80,
        ),
        virtual_server(
            settings,
            name="prometheus",
            namespace=contract.MONITORING_NAMESPACE,
            subdomain="prometheus",
            service=charts.PROMETHEUS_SERVICE,
            port=charts.PROMETHEUS_PORT,
            policies=(PROMETHEUS_BASIC_AUTH_POLICY,),
        ),
    ]


def all_objects(settings: AppSettings) -> list[Manifest]:
    issuers = [cluster_issuer(name, settings.acme_email) for name in ISSUERS]
    return [*issuers, prometheus_basic_auth_policy(), *virtual_servers(settings)]
