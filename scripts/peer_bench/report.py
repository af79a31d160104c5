"""Results of the peer comparison, and the markdown they are printed as.

A cell is the median of the rounds, each metric on its own: texts/s, p50 and p99 latency per
request, and the server's CPU time per text. A server whose embeddings were wrong has no numbers,
only the reason; a cell with failed requests (non-2xx, socket errors, timeouts) says how many.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Shape:
    label: str
    texts_per_request: int
    connections: int


SHAPES = (
    Shape("1 text, 1 conn", 1, 1),
    Shape("1 text, 8 conns", 1, 8),
    Shape("1 text, 32 conns", 1, 32),
    Shape("32 texts, 4 conns", 32, 4),
)


@dataclass(frozen=True)
class Measurement:
    texts_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_text: float
    errors: int = 0


@dataclass
class Row:
    model: str
    key: str
    label: str
    wrong: str | None = None  # why no numbers are shown
    notes: list[str] = field(default_factory=list)
    rounds: dict[str, list[Measurement]] = field(default_factory=dict)

    def median(self, shape: Shape) -> Measurement | None:
        found = self.rounds.get(shape.label)
        if not found:
            return None
        return Measurement(
            statistics.median(m.texts_per_s for m in found),
            statistics.median(m.p50_ms for m in found),
            statistics.median(m.p99_ms for m in found),
            statistics.median(m.cpu_us_per_text for m in found),
            sum(m.errors for m in found),
        )


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}" if value >= 10 else f"{value:.2f}"


def _cells(row: Row, shapes: tuple[Shape, ...], cell: str) -> list[str]:
    if row.wrong:
        return [f"refused: {row.wrong}"] + [""] * (len(shapes) - 1)
    found = []
    for shape in shapes:
        m = row.median(shape)
        if m is None:
            found.append("-")
            continue
        if m.texts_per_s == 0:
            text = "none served"
        elif cell == "rate":
            text = f"{_number(m.texts_per_s)} ({_number(m.p50_ms)} / {_number(m.p99_ms)})"
        else:
            text = f"{m.cpu_us_per_text:,.0f}"
        found.append(text + (f" ({m.errors} failed)" if m.errors else ""))
    return found


def _table(rows: list[Row], shapes: tuple[Shape, ...], cell: str, title: str) -> list[str]:
    lines = [f"**{title}**", ""]
    lines.append("| model | server | " + " | ".join(s.label for s in shapes) + " |")
    lines.append("|---|---|" + "---:|" * len(shapes))
    for row in rows:
        lines.append(
            f"| {row.model} | {row.label} | " + " | ".join(_cells(row, shapes, cell)) + " |"
        )
    return [*lines, ""]


def _ratios(rows: list[Row], shapes: tuple[Shape, ...]) -> list[str]:
    """bert-serve against infinity's ONNX engine, per model: issue 30's target is >= 1.5x."""
    lines = ["**bert-serve / infinity-emb `--engine optimum`: throughput (p99) ratio**", ""]
    lines.append("| model | " + " | ".join(s.label for s in shapes) + " |")
    lines.append("|---|" + "---:|" * len(shapes))
    found = False
    for model in dict.fromkeys(row.model for row in rows):
        pair = {r.key: r for r in rows if r.model == model and not r.wrong}
        ours, theirs = pair.get("bert-serve"), pair.get("infinity-optimum")
        if ours is None or theirs is None:
            continue
        cells = []
        for shape in shapes:
            a, b = ours.median(shape), theirs.median(shape)
            if a is None or b is None or not (a.texts_per_s > 0 and b.texts_per_s > 0):
                cells.append("-")  # not measured, or nothing served by one of them
                continue
            cells.append(f"{a.texts_per_s / b.texts_per_s:.2f}x ({a.p99_ms / b.p99_ms:.2f}x)")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
        found = True
    return [*lines, ""] if found else []


def render(header: list[str], rows: list[Row], shapes: tuple[Shape, ...]) -> str:
    lines = [*header, ""]
    lines += _table(rows, shapes, "rate", "texts/s (p50 / p99 ms per request)")
    lines += _table(rows, shapes, "cpu", "server CPU time per text (us)")
    lines += _ratios(rows, shapes)
    notes = [f"- {row.model}, {row.label}: {note}" for row in rows for note in row.notes]
    return "\n".join(lines + notes) + "\n"


def host_lines() -> list[str]:
    """The CPU, with the flags that decide ONNX Runtime's kernels (VNNI, AMX), and the load now."""
    model, flags = "unknown", set()
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    for line in lscpu.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "Model name":
            model = value.strip()
        elif name.strip() == "Flags":
            flags = set(value.split())
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
    shown = ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in wanted)
    load = Path("/proc/loadavg").read_text().split()[:3]
    return [
        f"- host: {platform.node()}, {model}, {os.cpu_count()} CPUs; {shown}",
        f"- load average at start: {' '.join(load)} (1, 5, 15 min)",
    ]
