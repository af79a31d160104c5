"""Install one library's wheel alone into a fresh virtual environment and check what came with it.

Pants builds the wheels (runtime_package_dependencies) into this test's sandbox. Each is installed
into a fresh virtual environment; third-party dependencies come from the configured package index.
"""

from __future__ import annotations

import json
import os
import subprocess
import venv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WheelExpectation:
    distribution: str
    module: str
    # Distributions that must NOT be installed alongside (normalized names).
    forbidden: frozenset[str]
    # Distributions that must be installed alongside.
    required: frozenset[str] = frozenset()


WEB = frozenset({"litestar", "uvicorn", "granian"})
INFRA = frozenset({"cdktf", "constructs", "jsii", "cdktf-cdktf-provider-kubernetes"})
LOAD = frozenset({"locust", "gevent"})
RUNTIME = frozenset({"onnxruntime", "onnxruntime-gpu", "onnx", "bert-runtime"})


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _wheel_for(wheel_dir: Path, distribution: str) -> Path:
    prefix = distribution.replace("-", "_") + "-"
    matches = [w for w in wheel_dir.glob("*.whl") if w.name.startswith(prefix)]
    assert len(matches) == 1, f"expected one wheel for {distribution}, found {matches}"
    return matches[0]


def _pip_environment() -> dict[str, str]:
    """This process's environment without Pants' PIP_CONFIG_FILE=/dev/null (pants.toml).

    That setting is for the pip inside pex; the pip here is a modern pip in a fresh venv, which
    should read the machine's pip config (index, CA bundle) as a user's pip would.
    """
    env = dict(os.environ)
    if env.get("PIP_CONFIG_FILE") == os.devnull:
        del env["PIP_CONFIG_FILE"]
    return env


def _run(*args: str | Path) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, env=_pip_environment()
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def check_wheel(expectation: WheelExpectation, tmp_path: Path) -> None:
    """Install the wheel from the sandbox root into a new venv; assert what came with it."""
    # Pants puts runtime_package_dependencies at the sandbox root.
    wheel_dir = Path.cwd()
    wheel = _wheel_for(wheel_dir, expectation.distribution)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # --find-links lets bert-api find the bert-runtime wheel built beside it; all else comes from
    # the index.
    # --no-compile: byte-compiling numpy, sympy & co. is most of the time and not under test.
    _run(
        python, "-m", "pip", "install", "--quiet", "--no-compile", "--find-links", wheel_dir, wheel
    )

    installed = {
        _normalize(entry["name"])
        for entry in json.loads(_run(python, "-m", "pip", "list", "--format", "json"))
    }
    assert _normalize(expectation.distribution) in installed
    assert expectation.required <= installed, f"missing: {expectation.required - installed}"
    assert not (
        expectation.forbidden & installed
    ), f"{expectation.distribution} pulls in {sorted(expectation.forbidden & installed)}"

    probe = (
        "import importlib.metadata as m, json, {module}; "
        "meta = m.metadata('{dist}'); "
        "print(json.dumps({{'file': {module}.__file__, 'version': meta['Version'], "
        "'summary': meta['Summary']}}))"
    ).format(module=expectation.module, dist=expectation.distribution)
    # Run from tmp_path so the import cannot come from the sandbox's source tree.
    done = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert str(env_dir) in info["file"], f"imported from {info['file']}, not the venv"
    assert info["version"] == "0.1.0"
    assert info["summary"], "wheel has no description"
