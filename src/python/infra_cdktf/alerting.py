"""
Where alerts go: the Alertmanager configuration kube-prometheus-stack installs, built from the
operator's inputs (Slack, e-mail or a webhook).

Secrets (the Slack or webhook URL, the SMTP password) never enter Helm values: they are sensitive
Terraform variables of the platform stack, stored in the Secret `alertmanager-receiver`, which
Alertmanager mounts (`alertmanagerSpec.secrets`) and reads through its `*_file` options
(Alertmanager 0.34.0, the version kube-prometheus-stack 88.5.3 runs: slack `api_url_file`,
webhook `url_file`, email `auth_password_file`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RECEIVER_KINDS = ("slack", "email", "webhook")
RECEIVER_SECRET = "alertmanager-receiver"
# The operator mounts each listed Secret at /etc/alertmanager/secrets/<name>/<key>.
SECRET_DIR = f"/etc/alertmanager/secrets/{RECEIVER_SECRET}"
# Per kind: the key in the Secret and the platform stack's sensitive Terraform variable.
SECRET_KEYS = {
    "slack": ("slack-webhook-url", "alert_slack_webhook_url"),
    "email": ("smtp-password", "alert_smtp_password"),
    "webhook": ("webhook-url", "alert_webhook_url"),
}
RECEIVER_NAME = "operator"


class AlertReceiverError(ValueError):
    """The receiver inputs are incomplete; the message names the missing input."""


@dataclass(frozen=True)
class AlertReceiver:
    """The operator's receiver; its secret comes from a Terraform variable, never from here."""

    kind: str
    slack_channel: str = ""
    email_to: str = ""
    email_from: str = ""
    smtp_smarthost: str = ""
    smtp_username: str = ""

    def __post_init__(self) -> None:
        if self.kind not in RECEIVER_KINDS:
            raise AlertReceiverError(
                f"ALERT_RECEIVER must be one of {', '.join(RECEIVER_KINDS)} (got {self.kind!r})"
            )
        required = {
            "slack": {"ALERT_SLACK_CHANNEL": self.slack_channel},
            "email": {
                "ALERT_EMAIL_TO": self.email_to,
                "ALERT_EMAIL_FROM": self.email_from,
                "ALERT_SMTP_SMARTHOST": self.smtp_smarthost,
                "ALERT_SMTP_USERNAME": self.smtp_username,
            },
            "webhook": {},
        }[self.kind]
        missing = [name for name, value in required.items() if not value]
        if missing:
            raise AlertReceiverError(
                f"ALERT_RECEIVER={self.kind} needs {', '.join(missing)} (see docs/DEPLOY.md)"
            )
        if self.kind == "email" and ":" not in self.smtp_smarthost:
            raise AlertReceiverError("ALERT_SMTP_SMARTHOST must be host:port, such as smtp:587")

    @property
    def secret_key(self) -> str:
        return SECRET_KEYS[self.kind][0]

    @property
    def terraform_variable(self) -> str:
        return SECRET_KEYS[self.kind][1]

    def receiver(self) -> dict[str, Any]:
        secret_file = f"{SECRET_DIR}/{self.secret_key}"
        if self.kind == "slack":
            config: dict[str, Any] = {
                "slack_configs": [
                    {
                        "api_url_file": secret_file,
                        "channel": self.slack_channel,
                        "send_resolved": True,
                        "title": "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}",
                        "text": "{{ range .Alerts }}{{ .Annotations.summary }} "
                        "({{ .Labels.severity }}) {{ .Annotations.runbook }}\n{{ end }}",
                    }
                ]
            }
        elif self.kind == "email":
            config = {
                "email_configs": [
                    {
                        "to": self.email_to,
                        "from": self.email_from,
                        "smarthost": self.smtp_smarthost,
                        "auth_username": self.smtp_username,
                        "auth_password_file": secret_file,
                        "require_tls": True,
                        "send_resolved": True,
                    }
                ]
            }
        else:
            config = {"webhook_configs": [{"url_file": secret_file, "send_resolved": True}]}
        return {"name": RECEIVER_NAME, **config}


def alertmanager_config(receiver: AlertReceiver) -> dict[str, Any]:
    """
    Every alert to the operator's receiver, except the stack's Watchdog (always firing, by design)
    and InfoInhibitor, which go nowhere as in the chart's default configuration.
    """
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": RECEIVER_NAME,
            "group_by": ["alertname", "namespace"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {"receiver": "null", "matchers": ['alertname = "Watchdog"']},
                {"receiver": "null", "matchers": ['alertname = "InfoInhibitor"']},
            ],
        },
        "inhibit_rules": [
            {
                "source_matchers": ["severity = page"],
                "target_matchers": ["severity = warning"],
                "equal": ["namespace", "alertname"],
            }
        ],
        "receivers": [{"name": "null"}, receiver.receiver()],
    }
