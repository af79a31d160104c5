"""
Test helper: synthesize the whole app (as `cdktf synth` does, cross-stack references included)
into a folder and read back each stack's cdk.tf.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cdktf import App

from infra_cdktf.main import build
from infra_cdktf.settings import AppSettings

STACKS = ("cluster", "platform", "inference")
# A fixed state folder keeps the synthesized JSON free of machine paths.
TEST_STATE_DIR = "/var/lib/bert-serve-state"


def settings_for_tests(**overrides: Any) -> AppSettings:
    values: dict[str, Any] = {
        "domain": "example.com",
        "acme_email": "ops@example.com",
        "state_dir": TEST_STATE_DIR,
        "alert_receiver": "webhook",
    }
    values.update(overrides)
    return AppSettings(**values)


def synthesize(settings: AppSettings, outdir: Path) -> dict[str, dict[str, Any]]:
    app = App(outdir=str(outdir))
    build(app, settings)
    app.synth()
    return {
        stack: json.loads((outdir / "stacks" / stack / "cdk.tf.json").read_text())
        for stack in STACKS
    }


def flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, leaf) pairs of a JSON document, for diffs between two syntheses."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flatten(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from flatten(item, f"{path}[{index}]")
    else:
        yield path, value


def changed_paths(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    old, new = dict(flatten(before)), dict(flatten(after))
    return {
        path: (old.get(path), new.get(path))
        for path in sorted(old.keys() | new.keys())
        if old.get(path) != new.get(path)
    }


def manifests(synthesized: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every Kubernetes object the app applies as a manifest."""
    found: list[dict[str, Any]] = []
    for document in synthesized.values():
        for resource in document.get("resource", {}).get("kubernetes_manifest", {}).values():
            found.append(resource["manifest"])
    return found


SNAPSHOT = Path("src/python/infra_cdktf/snapshots/synth.json")


def render_snapshot(synthesized: dict[str, dict[str, Any]]) -> str:
    return json.dumps(synthesized, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    # Regenerate the snapshot after a reviewed change (docs/DEPLOY.md):
    #   BERT_SERVE_DEPLOY_DIR=$PWD/deploy ./pants run src/python/infra_cdktf/synth_testing.py -- \
    #     $PWD/src/python/infra_cdktf/snapshots/synth.json
    with tempfile.TemporaryDirectory() as outdir:
        Path(sys.argv[1]).write_text(
            render_snapshot(synthesize(settings_for_tests(), Path(outdir)))
        )
