"""Alerts reach the receiver the operator configured; its secret is read from a mounted file."""

from __future__ import annotations

import pytest
import yaml

from infra_cdktf import alerting, chart_values
from infra_cdktf.alerting import AlertReceiver, AlertReceiverError

RECEIVERS = {
    "slack": AlertReceiver(kind="slack", slack_channel="#bert-alerts"),
    "email": AlertReceiver(
        kind="email",
        email_to="oncall@example.com",
        email_from="alerts@example.com",
        smtp_smarthost="smtp.example.com:587",
        smtp_username="alerts",
    ),
    "webhook": AlertReceiver(kind="webhook"),
}


@pytest.mark.parametrize("kind", alerting.RECEIVER_KINDS)
def test_every_alert_but_the_watchdog_goes_to_the_operators_receiver(kind: str) -> None:
    receiver = RECEIVERS[kind]
    config = alerting.alertmanager_config(receiver)
    assert config["route"]["receiver"] == alerting.RECEIVER_NAME
    silenced = {route["matchers"][0] for route in config["route"]["routes"]}
    assert silenced == {'alertname = "Watchdog"', 'alertname = "InfoInhibitor"'}
    (operator,) = (r for r in config["receivers"] if r["name"] == alerting.RECEIVER_NAME)
    (notifier,) = (v for k, v in operator.items() if k.endswith("_configs"))
    secret_options = [k for k in notifier[0] if k.endswith("_file")]
    assert len(secret_options) == 1
    path = notifier[0][secret_options[0]]
    assert path == f"/etc/alertmanager/secrets/{alerting.RECEIVER_SECRET}/{receiver.secret_key}"
    assert notifier[0]["send_resolved"] is True


def test_the_secret_is_mounted_and_never_in_the_values() -> None:
    values = chart_values.kube_prometheus_stack_values(
        "g.example.com", "p.example.com", RECEIVERS["slack"]
    )
    assert values["alertmanager"]["alertmanagerSpec"]["secrets"] == [alerting.RECEIVER_SECRET]
    text = yaml.safe_dump(values)
    assert "hooks.slack.com" not in text and "api_url:" not in text


def test_incomplete_receivers_are_refused() -> None:
    with pytest.raises(AlertReceiverError, match="ALERT_RECEIVER must be one of"):
        AlertReceiver(kind="")
    with pytest.raises(AlertReceiverError, match="host:port"):
        AlertReceiver(
            kind="email",
            email_to="a@b.c",
            email_from="d@e.f",
            smtp_smarthost="smtp.example.com",
            smtp_username="u",
        )
