"""Inputs are kept with the state: a later synth from a fresh shell deploys the same thing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra_cdktf import inputs_store
from infra_cdktf.main import main
from infra_cdktf.settings import AppSettings

FIRST = {
    "BERT_SERVE_DOMAIN": "example.com",
    "BERT_SERVE_ACME_EMAIL": "ops@example.com",
    "BERT_SERVE_ALERT_RECEIVER": "webhook",
    "BERT_SERVE_MAX_REPLICAS": "5",
}


def test_kept_inputs_come_back_and_the_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / inputs_store.INPUTS_FILE
    first = inputs_store.resolve({**FIRST, "HOME": "/root"}, path)
    assert first.values == FIRST, "only BERT_SERVE_* values are kept"
    inputs_store.save(first, path)
    assert json.loads(path.read_text()) == FIRST

    fresh_shell = inputs_store.resolve({}, path)
    assert AppSettings.from_env(fresh_shell.values).max_replicas == 5
    assert fresh_shell.changed == {}

    changed = inputs_store.resolve({"BERT_SERVE_MAX_REPLICAS": "7"}, path)
    assert AppSettings.from_env(changed.values).max_replicas == 7
    assert changed.changed == {"BERT_SERVE_MAX_REPLICAS": ("5", "7")}
    assert "inputs: BERT_SERVE_MAX_REPLICAS '5' -> '7'" in changed.report()


def test_the_state_folder_itself_is_not_kept(tmp_path: Path) -> None:
    resolved = inputs_store.resolve({**FIRST, "BERT_SERVE_STATE_DIR": "/x"}, tmp_path / "f.json")
    assert "BERT_SERVE_STATE_DIR" not in resolved.values


def test_a_fresh_shell_export_uses_the_kept_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BERT_SERVE_STATE_DIR", str(tmp_path))
    for name in FIRST:
        monkeypatch.delenv(name, raising=False)
    assert main(["--format", "yaml", "--out", str(tmp_path / "out")]) == 2
    (tmp_path / inputs_store.INPUTS_FILE).write_text(json.dumps(FIRST))
    assert main(["--format", "yaml", "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "SECRETS").is_file()
