"""Checks of the Prometheus rules and the runbook."""
