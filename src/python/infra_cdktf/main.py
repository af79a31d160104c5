"""
The CDKTF app: `cdktf synth` / `cdktf deploy` run it (deploy/cdktf/cdktf.json), and so does the
`synth` PEX, which needs no Node CLI (jsii still needs node on PATH).

`synth --format yaml --out DIR` writes every Kubernetes object as plain YAML instead
(export.py), for GitOps and for the policy checks.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cdktf import App, LocalBackend

from infra_cdktf import export, inputs_store
from infra_cdktf.settings import ENV_PREFIX, AppSettings, AppSettingsError
from infra_cdktf.stacks.cluster import ClusterStack
from infra_cdktf.stacks.inference import InferenceStack
from infra_cdktf.stacks.platform import PlatformStack


def build(app: App, settings: AppSettings) -> None:
    cluster = ClusterStack(app, "cluster", settings.cluster)
    platform = PlatformStack(app, "platform", settings, cluster.kubeconfig)
    inference = InferenceStack(app, "inference", settings, cluster.kubeconfig)
    inference.add_dependency(platform)
    for stack in (cluster, platform, inference):
        LocalBackend(stack, path=settings.state_path(stack.node.id))


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="synth", description=__doc__)
    parser.add_argument("--format", choices=("terraform", "yaml"), default="terraform")
    parser.add_argument("--out", type=Path, help="folder of the YAML export (--format yaml)")
    args = parser.parse_args(argv)
    if args.format == "yaml" and args.out is None:
        parser.error("--format yaml needs --out DIR")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    state_dir = os.environ.get(f"{ENV_PREFIX}STATE_DIR", "")
    kept = inputs_store.inputs_path(state_dir)
    inputs = inputs_store.resolve(os.environ, kept)
    try:
        settings = AppSettings.from_env(inputs.values | {f"{ENV_PREFIX}STATE_DIR": state_dir})
    except AppSettingsError as error:
        print(f"infra: error: {error}", file=sys.stderr)
        return 2
    for line in inputs.report():
        print(f"infra: {line}", file=sys.stderr)
    if args.format == "yaml":
        written = export.export(settings, args.out)
        print(
            f"infra: wrote {len(written.manifests)} manifests and {len(written.chart_values)} "
            f"chart values files to {args.out}; Secrets to create first: {args.out / 'SECRETS'}",
            file=sys.stderr,
        )
        return 0
    # The Node CLI passes its output folder in CDKTF_OUTDIR; App() reads it.
    app = App()
    build(app, settings)
    app.synth()
    inputs_store.save(inputs, kept)
    return 0


if __name__ == "__main__":
    sys.exit(main())
