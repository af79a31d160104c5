"""
The `BERT_SERVE_*` inputs are kept with the Terraform state (`bert-serve.inputs.json` in the state
folder), so a later `cdktf deploy` from a fresh shell deploys what the first one did instead of
silently falling back to defaults. The environment still wins: a variable that is set replaces
the kept value, and the change is reported. No secret is ever an input (they are sensitive
Terraform variables), so the file holds none.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infra_cdktf.settings import ENV_PREFIX

INPUTS_FILE = "bert-serve.inputs.json"
# Where the state lives is not itself kept: it says where to look.
NOT_KEPT = {f"{ENV_PREFIX}STATE_DIR"}


@dataclass(frozen=True)
class ResolvedInputs:
    """The inputs to synthesize with, and what differs from the kept ones."""

    values: dict[str, str]
    kept: dict[str, str]
    changed: dict[str, tuple[str | None, str]] = field(default_factory=dict)

    def report(self) -> list[str]:
        lines = [
            f"inputs: {len(self.values)} BERT_SERVE_* values, "
            f"{len(set(self.values) - set(self.changed))} as kept from the last synth"
        ]
        for name, (before, after) in sorted(self.changed.items()):
            lines.append(
                f"inputs: {name} {before!r} -> {after!r}"
                if before
                else f"inputs: {name} set to {after!r}"
            )
        return lines


def inputs_path(state_dir: str) -> Path:
    return Path(state_dir or os.getcwd()) / INPUTS_FILE


def resolve(environ: Mapping[str, str], path: Path) -> ResolvedInputs:
    """The kept inputs, overridden by the `BERT_SERVE_*` variables set in `environ`."""
    kept: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    given = {
        name: value
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX) and name not in NOT_KEPT
    }
    changed = {
        name: (kept.get(name), value) for name, value in given.items() if kept.get(name) != value
    }
    return ResolvedInputs(values={**kept, **given}, kept=kept, changed=changed)


def save(inputs: ResolvedInputs, path: Path) -> None:
    """Write the inputs next to the state, atomically (a crash leaves the old file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(inputs.values, indent=1, sort_keys=True) + "\n")
    partial.replace(path)
