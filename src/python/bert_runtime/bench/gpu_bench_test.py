"""gpu_bench's dry run (tiny-bert on CPU): every section runs or says why not; no numbers kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bert_runtime.bench import gpu_bench, gpu_measure
from bert_runtime.config import Device
from bert_runtime.preparation.prepare import prepare
from bert_runtime.testutil.models import TINY_BERT

TITLES = (
    "Node placement",
    "fp32 engine at s16 (cpu)",
    "PyTorch eager fp32",
    "Fused attention on and off",
    "CUDA graphs on and off",
    "Mixed lengths 8-16",
    "Accuracy (mean-pooled embeddings)",
    "HTTP server with batched clients",
    "Peak GPU memory",
    "Targets (issue 29)",
)


def test_the_dry_run_fills_or_explains_every_table(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["--device", "cpu", "--tiny", "--out", str(out), "--workdir", str(tmp_path / "work")]
    assert gpu_bench.main(argv) == 0

    text = (out / "gpu_bench.md").read_text()
    for title in TITLES:
        assert f"### {title}" in text, title
    report = json.loads((out / "gpu_bench.json").read_text())
    tables = {table["title"]: table for table in report["tables"]}
    assert not [t["title"] for t in tables.values() if any("failed" in n for n in t["notes"])]
    assert not [t["title"] for t in tables.values() if any("skipped" in n for n in t["notes"])]

    sweep = report["data"]["sweep"]
    assert sorted(int(batch) for batch in sweep) == [1, 2, 4]
    assert all(row["engine_rate"] > 0 and row["session_rate"] > 0 for row in sweep.values())
    assert len(report["data"]["mixed"]) == 3  # no packed modes: no CPU kernels
    parity = report["data"]["accuracy"]
    assert len(parity) == 6 and min(parity.values()) > 0.99999
    for title in ("Fused attention on and off", "CUDA graphs on and off"):
        assert any("not measured" in note for note in _table(tables, title)["notes"])
    mixed = _table(tables, "Mixed lengths")
    assert any("2 PackedAttention" in note for note in mixed["notes"])
    targets = _table(tables, "Targets")
    assert all(row[-1] in {"met", "NOT met", "not measured"} for row in targets["rows"])


def _table(tables: dict[str, dict[str, Any]], prefix: str) -> dict[str, Any]:
    return next(table for title, table in tables.items() if title.startswith(prefix))


def test_the_kernel_probe_keeps_each_variants_report_apart(tmp_path: Path) -> None:
    # A child process per probe run; on a CPU build ONNX Runtime reports no CUDA kernel, which the
    # probe says instead of reporting nothing. On the GPU the same lines carry SdpaKernel=...
    model = tmp_path / "tiny-cuda"
    prepare(str(TINY_BERT), model, device=Device.CUDA)
    found = gpu_measure.probe_kernels({"auto": f"{model}=auto", "math only": f"{model}=math"})
    assert found == {
        "auto": "no kernel report (not a CUDA session)",
        "math only": "no kernel report (not a CUDA session)",
    }
    line = (
        "\x1b[36mOperator=Attention Node=l0 DataType=fp16 SdpaKernel=CUDNN_FLASH_ATTENTION\x1b[0m"
    )
    assert gpu_measure.KERNEL_LINE.findall(line) == [("Attention", "CUDNN_FLASH_ATTENTION")]
