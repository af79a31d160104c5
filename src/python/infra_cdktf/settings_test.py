from __future__ import annotations

import pytest

from infra_cdktf.settings import AppSettings, AppSettingsError

REQUIRED = {
    "BERT_SERVE_DOMAIN": "example.com",
    "BERT_SERVE_ACME_EMAIL": "ops@example.com",
    "BERT_SERVE_ALERT_RECEIVER": "webhook",
}


def test_required_inputs_come_from_the_environment_with_defaults_for_the_rest() -> None:
    settings = AppSettings.from_env(REQUIRED)
    assert settings.host("grafana") == "grafana.example.com"
    assert settings.tls_issuer == "letsencrypt-prod"
    assert settings.require_api_key is False


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_a_missing_required_input_is_named(missing: str) -> None:
    environ = {k: v for k, v in REQUIRED.items() if k != missing}
    with pytest.raises(AppSettingsError, match=missing):
        AppSettings.from_env(environ)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BERT_SERVE_DOMAIN", "Not A Domain"),
        ("BERT_SERVE_ACME_EMAIL", "nobody"),
        ("BERT_SERVE_TLS_ISSUER", "letsencrypt"),
        ("BERT_SERVE_MAX_REPLICAS", "many"),
        ("BERT_SERVE_MIN_REPLICAS", "0"),
        ("BERT_SERVE_REQUIRE_API_KEY", "maybe"),
        ("BERT_SERVE_MODEL_CACHE_SIZE", "20GB"),
        ("BERT_SERVE_ALERT_RECEIVER", "pager"),
        ("BERT_SERVE_ACTIVE_REQUESTS_TARGET", "0"),
    ],
)
def test_a_bad_input_is_refused_with_its_name(name: str, value: str) -> None:
    with pytest.raises(AppSettingsError, match=name.removeprefix("BERT_SERVE_")):
        AppSettings.from_env({**REQUIRED, name: value})


def test_typed_inputs_are_converted() -> None:
    settings = AppSettings.from_env(
        {
            **REQUIRED,
            "BERT_SERVE_MAX_REPLICAS": "5",
            "BERT_SERVE_REQUIRE_API_KEY": "true",
            "BERT_SERVE_GPU_AUTOSCALER_MAX": "6",
        }
    )
    assert settings.max_replicas == 5
    assert settings.require_api_key is True
    assert settings.cluster.gpu_autoscaler_max == 6


def test_a_receiver_without_its_inputs_is_refused_with_their_names() -> None:
    with pytest.raises(AppSettingsError, match="ALERT_SLACK_CHANNEL"):
        AppSettings.from_env({**REQUIRED, "BERT_SERVE_ALERT_RECEIVER": "slack"})
    with pytest.raises(AppSettingsError, match="ALERT_EMAIL_TO, .*ALERT_SMTP_USERNAME"):
        AppSettings.from_env({**REQUIRED, "BERT_SERVE_ALERT_RECEIVER": "email"})


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("ghcr.io/bert-serve/api-gpu:0.1.0", "ghcr.io"),
        ("registry.example.com:5000/api@sha256:" + "0" * 64, "registry.example.com:5000"),
        ("bertserve/api-gpu:0.1.0", "docker.io"),
    ],
)
def test_the_pull_secret_names_the_images_registry(image: str, registry: str) -> None:
    settings = AppSettings.from_env({**REQUIRED, "BERT_SERVE_IMAGE": image})
    assert settings.registry_server == registry
