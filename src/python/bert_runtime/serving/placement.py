"""Where a session's nodes ran, read from ONNX Runtime's profile of one run.

Why: the CUDA provider silently leaves a node on CPU when it has no kernel for it, and every such
node costs a device-to-host copy and CPU time on each run. ONNX Runtime's own switch,
`session.disable_cpu_ep_fallback` (onnxruntime 1.31.1, inference_session.cc), refuses any node on
CPU, including the tiny shape computations (Shape, Range, ...) that ONNX Runtime itself places
on CPU on purpose; it would refuse MPNet's and ModernBERT's position-bias subgraphs. So strict
mode checks what matters instead: no node on CPU may produce floating-point data (activations).
Integer and boolean nodes on CPU are shape arithmetic, which ONNX Runtime's CUDA-graph check also
allows (it warns about "shape massaging nodes that will execute on CPU").
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from bert_runtime.errors import ProviderUnavailableError

CPU_PROVIDER = "CPUExecutionProvider"
# Element types in the profile's output_type_shape that carry activations.
_FLOAT_TYPES = frozenset({"float", "float16", "double", "bfloat16"})
_KERNEL_TIME = "_kernel_time"


@dataclass(frozen=True)
class NodeRun:
    """One node's kernel run: name, operator, provider and its outputs' element types."""

    name: str
    op_type: str
    provider: str
    output_types: tuple[str, ...]

    @property
    def computes_floats(self) -> bool:
        return any(kind in _FLOAT_TYPES for kind in self.output_types)


@dataclass(frozen=True)
class Placement:
    """Every node that ran in one profiled run."""

    nodes: tuple[NodeRun, ...]

    def counts(self) -> dict[str, int]:
        """Nodes per provider."""
        return dict(Counter(node.provider for node in self.nodes))

    def cpu_compute(self) -> list[NodeRun]:
        """Nodes on CPU that produce floating-point data: work that should be on the GPU."""
        return [n for n in self.nodes if n.provider == CPU_PROVIDER and n.computes_floats]

    def cpu_shape_nodes(self) -> list[NodeRun]:
        """Nodes on CPU that produce only integers or booleans (shape arithmetic)."""
        return [n for n in self.nodes if n.provider == CPU_PROVIDER and not n.computes_floats]

    def memcpy_nodes(self) -> list[NodeRun]:
        """The copies ONNX Runtime inserted between devices (MemcpyToHost, MemcpyFromHost)."""
        return [n for n in self.nodes if n.op_type.startswith("Memcpy")]

    def summary(self) -> str:
        cpu = sorted({f"{n.op_type}" for n in self.cpu_compute()})
        shape = sorted({f"{n.op_type}" for n in self.cpu_shape_nodes()})
        return (
            f"nodes by provider {self.counts()}; on CPU computing floats: {cpu or 'none'}; "
            f"on CPU, shape arithmetic: {shape or 'none'}; copies: {len(self.memcpy_nodes())}"
        )


def read_profile(path: Path) -> Placement:
    """The node runs in an ONNX Runtime profile (JSON trace events), in run order."""
    events = json.loads(path.read_text())
    nodes = []
    for event in events:
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith(_KERNEL_TIME):
            continue
        args = event.get("args", {})
        types = tuple(kind for output in args.get("output_type_shape", []) for kind in output)
        nodes.append(
            NodeRun(
                name=str(event["name"])[: -len(_KERNEL_TIME)],
                op_type=str(args.get("op_name", "?")),
                provider=str(args.get("provider", "?")),
                output_types=types,
            )
        )
    return Placement(tuple(nodes))


def enable_profiling(options: ort.SessionOptions) -> None:
    """Profile the session's runs (until `finish_profiling`) into the temporary directory."""
    options.enable_profiling = True
    options.profile_file_prefix = str(
        Path(tempfile.gettempdir()) / f"bert-runtime-placement-{uuid.uuid4().hex}"
    )


def finish_profiling(session: ort.InferenceSession) -> Placement:
    """Stop the session's profiling (later runs are not profiled) and read what it recorded."""
    path = Path(session.end_profiling())
    try:
        return read_profile(path)
    finally:
        path.unlink(missing_ok=True)


def check_no_cpu_compute(placement: Placement) -> None:
    """Raise ProviderUnavailableError when any floating-point work ran on CPU."""
    cpu = placement.cpu_compute()
    if cpu:
        named = ", ".join(f"{n.op_type} {n.name}" for n in cpu[:10])
        more = f" and {len(cpu) - 10} more" if len(cpu) > 10 else ""
        raise ProviderUnavailableError(
            f"strict CUDA: {len(cpu)} node(s) computing floating-point data ran on CPU "
            f"({named}{more}); the CUDA provider has no kernel for them at this precision. "
            "An EngineConfig with strict_device=False accepts it. "
            f"{placement.summary()}"
        )
