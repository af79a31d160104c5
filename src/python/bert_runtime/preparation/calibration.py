"""Find each int8 MatMul's outlier input channels on built-in texts (see quantize.py).

Real checkpoints put their huge activations in a few fixed channels (all-mpnet-base-v2: channels
555, 461, 568 and 756 of every layer-norm output reach 40-66 where the rest stay under 4), so a
fixed list found once, here, holds for every input. A channel is an outlier when its largest
magnitude over the texts is more than OUTLIER_FACTOR times the median channel's; such channels
stay fp32. The texts are not the ones the accuracy check measures (accuracy_check.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from bert_runtime.preparation.probe import Probe, cpu_session, run_each
from bert_runtime.preparation.quantize import quantizable

# 4: on all-mpnet-base-v2 it keeps 133 of 61,440 input channels in fp32 (34 of its 48 MatMuls),
# min cosine 0.9975 to fp32 where 6 gives 0.9943 (docs/BENCHMARKS.md).
OUTLIER_FACTOR = 4.0

CALIBRATION_TEXTS = (
    "The weather today is sunny with a light breeze from the west.",
    "She opened the letter slowly, afraid of what it might say.",
    "Quarterly revenue rose 12% to $4.2 billion, beating analyst estimates.",
    "How do I reset my password if I no longer have access to my email?",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The committee will meet on Tuesday at 10:00 to review the budget.",
    "Add two cups of flour, a pinch of salt, and stir until smooth.",
    "He scored twice in the second half, sealing a 3-1 victory for the visitors.",
    "Machine learning models can overfit when trained on small datasets.",
    "Please find attached the signed contract and the invoice for March.",
    "The museum's new wing houses sculptures from the 18th and 19th centuries.",
    "Is there a pharmacy open near the central station after midnight?",
    "Der Zug nach Berlin fährt um 14:35 von Gleis 7 ab.",
    "La réunion est reportée à jeudi prochain à cause de la grève.",
    "El perro corre por el parque mientras los niños juegan.",
    "北京是中国的首都,有着悠久的历史。",
    "Error: connection refused (errno 111) while contacting 10.0.0.5:5432",
    "SELECT name, age FROM users WHERE age > 30 ORDER BY name;",
    "I loved this phone at first, but the battery died after two weeks.",
    "Terrible service, cold food, and we waited an hour for the bill.",
    "Climate change is driving more frequent and intense heatwaves across Europe.",
    "The patient presented with fever, cough and shortness of breath.",
    "Shares of the chipmaker fell after it cut its full-year forecast.",
    "To install the package, run pip install and restart the kernel.",
    "Once upon a time, in a village by the sea, there lived an old fisherman.",
    "The court ruled that the law violated the constitution's free speech clause.",
    "Best pizza in town!!! 🍕🍕 will definitely come back",
    "what's the difference between a virus and a bacterium",
    "Mount Everest is the highest mountain above sea level, at 8,849 metres.",
    "The API returns a JSON object with the fields id, name and created_at.",
    "Our flight was delayed by three hours due to a technical problem.",
    "Neural networks are composed of layers of interconnected nodes.",
    " ".join(
        ["A long report on the economy, trade and the labour market in the last decade."] * 12
    ),
    " ".join(["Notes: discuss the roadmap, assign owners, set deadlines, follow up."] * 20),
)


def channel_ranges(
    model: onnx.ModelProto, probe: Probe, workdir: Path
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each quantizable MatMul's lowest and highest input per channel over the probe's texts."""
    initializers = {init.name: init for init in model.graph.initializer}
    inputs = {
        node.name: node.input[0] for node in model.graph.node if quantizable(node, initializers)
    }
    watched = onnx.ModelProto()
    watched.CopyFrom(model)
    names = sorted(set(inputs.values()))
    known = {output.name for output in watched.graph.output}
    watched.graph.output.extend(
        helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        for name in names
        if name not in known
    )
    session = cpu_session(watched, workdir / "calibration.onnx")
    lows: dict[str, np.ndarray] = {}
    highs: dict[str, np.ndarray] = {}
    for values in run_each(session, probe, names):
        for name, value in zip(names, values, strict=True):
            flat = value.reshape(-1, value.shape[-1])
            low, high = flat.min(axis=0), flat.max(axis=0)
            lows[name] = np.minimum(lows[name], low) if name in lows else low
            highs[name] = np.maximum(highs[name], high) if name in highs else high
    return {node: (lows[tensor], highs[tensor]) for node, tensor in inputs.items()}


def outlier_channels(ranges: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """The channels of each MatMul whose peak |value| exceeds OUTLIER_FACTOR x the median's."""
    outliers = {}
    for node, (low, high) in ranges.items():
        peak = np.maximum(np.abs(low), np.abs(high))
        outliers[node] = np.flatnonzero(peak > OUTLIER_FACTOR * np.median(peak)).astype(np.int64)
    return outliers
