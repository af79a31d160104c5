"""
TLS that works with F5 NGINX Ingress Controller 5.5.4, and a public endpoint that serves only
HTTPS and only the API's public paths (edge_manifests.py says why, with the upstream sources).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from infra_cdktf import charts, contract
from infra_cdktf.synth_testing import manifests, settings_for_tests, synthesize

Synth = dict[str, dict[str, Any]]
SOLVER_LABEL = "acme.cert-manager.io/http01-solver"


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(settings_for_tests(), tmp_path_factory.mktemp("synth"))


def _servers(synth: Synth) -> dict[str, dict[str, Any]]:
    return {m["spec"]["host"]: m for m in manifests(synth) if m["kind"] == "VirtualServer"}


def _controller_values(synth: Synth) -> dict[str, Any]:
    release = synth["platform"]["resource"]["helm_release"][charts.NGINX_INGRESS.release]
    values: dict[str, Any] = yaml.safe_load(release["values"][0])["controller"]
    return values


def route_for(server: dict[str, Any], path: str) -> dict[str, Any]:
    """NGINX prefix locations: the longest matching prefix wins."""
    matching = [r for r in server["spec"]["routes"] if path.startswith(r["path"])]
    return max(matching, key=lambda route: len(route["path"]))


def test_no_http01_solver_depends_on_ingress_host_merging(synth: Synth) -> None:
    objects = manifests(synth)
    assert not [m for m in objects if m["kind"] == "Ingress"], "every host is a VirtualServer"
    servers = _servers(synth)
    controller = _controller_values(synth)
    # The controller converts the solver's Ingress into a route of the VirtualServer that owns
    # the host only with -enable-cert-manager (configuration.go isChallengeIngress).
    assert controller["enableCertManager"] is True
    assert controller["enableCustomResources"] is True
    issuers = [m for m in objects if m["kind"] == "ClusterIssuer"]
    assert issuers
    for issuer in issuers:
        for solver in issuer["spec"]["acme"]["solvers"]:
            assert set(solver) == {"http01"}
            # The solver Ingress must be of the controller's class to be seen at all.
            assert solver["http01"]["ingress"] == {"ingressClassName": charts.INGRESS_CLASS}
    for host, server in servers.items():
        tls = server["spec"]["tls"]
        assert tls["cert-manager"]["cluster-issuer"] in {i["metadata"]["name"] for i in issuers}
        assert server["spec"]["ingressClassName"] == controller["ingressClass"]["name"]
        # The redirect also catches /.well-known/acme-challenge: a temporary certificate lets
        # the redirected challenge complete its TLS handshake.
        assert tls["redirect"]["enable"] is True
        assert tls["cert-manager"]["issue-temp-cert"] is True, host


def test_every_public_host_is_https_only(synth: Synth) -> None:
    servers = _servers(synth)
    assert set(servers) == {
        "inference.example.com",
        "grafana.example.com",
        "prometheus.example.com",
    }
    for server in servers.values():
        tls = server["spec"]["tls"]
        assert tls["secret"] and tls["redirect"]["code"] == 301
        for route in server["spec"]["routes"]:
            action = route["action"]
            if "proxy" in action:
                (hsts,) = action["proxy"]["responseHeaders"]["add"]
                assert hsts["name"] == "Strict-Transport-Security"
    exposed = [
        m
        for m in manifests(synth)
        if m["kind"] == "Service" and m["spec"]["type"] in ("LoadBalancer", "NodePort")
    ]
    assert exposed == [], "the only way in is the ingress controller's HTTPS endpoint"


@pytest.mark.parametrize("path", ["/metrics", "/docs", "/docs/swagger", "/schema", "/"])
def test_private_paths_are_not_served_publicly(synth: Synth, path: str) -> None:
    server = _servers(synth)["inference.example.com"]
    assert route_for(server, path)["action"]["return"]["code"] == 404


@pytest.mark.parametrize(
    "path",
    ["/v1/models/bert:predict", "/v2/models/bert/infer", "/v1/embeddings", "/embed", "/health"],
)
def test_api_paths_reach_the_service(synth: Synth, path: str) -> None:
    server = _servers(synth)["inference.example.com"]
    assert route_for(server, path)["action"]["proxy"]["upstream"] == "backend"
    (upstream,) = server["spec"]["upstreams"]
    assert (upstream["service"], upstream["port"]) == (contract.APP, contract.HTTP_PORT)
    # The seed's edge limits.
    assert upstream["client-max-body-size"] == "50m"
    assert upstream["read-timeout"] == upstream["send-timeout"] == "300s"


def test_the_issuer_and_hosts_follow_the_inputs(tmp_path_factory: pytest.TempPathFactory) -> None:
    staging = synthesize(
        settings_for_tests(tls_issuer="letsencrypt-staging", domain="models.example.org"),
        tmp_path_factory.mktemp("staging"),
    )
    servers = _servers(staging)
    assert "inference.models.example.org" in servers
    assert {s["spec"]["tls"]["cert-manager"]["cluster-issuer"] for s in servers.values()} == {
        "letsencrypt-staging"
    }
    issuers = {m["metadata"]["name"]: m for m in manifests(staging) if m["kind"] == "ClusterIssuer"}
    assert "staging" in issuers["letsencrypt-staging"]["spec"]["acme"]["server"]
    assert issuers["letsencrypt-prod"]["spec"]["acme"]["email"] == "ops@example.com"
