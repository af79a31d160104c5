"""
The CDKTF app: `cdktf synth` / `cdktf deploy` run it (deploy/cdktf/cdktf.json), and so does the
`synth` PEX, which needs no Node CLI (jsii still needs node on PATH).
"""

from __future__ import annotations

import os
import sys

from cdktf import App, LocalBackend

from infra_cdktf.settings import AppSettings, AppSettingsError
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


def main() -> int:
    try:
        settings = AppSettings.from_env(os.environ)
    except AppSettingsError as error:
        print(f"infra: error: {error}", file=sys.stderr)
        return 2
    # The Node CLI passes its output folder in CDKTF_OUTDIR; App() reads it.
    app = App()
    build(app, settings)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
