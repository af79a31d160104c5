"""The pooled outputs every family's graph has: the first token's vector, the masked mean, the
pooler's output when the checkpoint has a pooler, and a sentence-transformers model's Dense
projections of the first two.

Apart from graph.py because ModernBERT's graph and BERT's share them, and because the heads read
the pooled vectors (heads_graph.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto

from bert_runtime.errors import ModelSourceError
from bert_runtime.preparation.model_config import BertConfig
from bert_runtime.preparation.onnx_builder import ATTENTION_MASK, GraphBuilder, float_output
from bert_runtime.preparation.st_settings import DenseLayer
from bert_runtime.preparation.weights import Weights


@dataclass(frozen=True)
class Pooled:
    """The pooled vectors' tensor names (before any Dense layers) and the graph outputs they add."""

    cls: str
    mean: str
    # The pooler's output, when the checkpoint has a pooler.
    pooler: str | None
    outputs: list[onnx.ValueInfoProto] = field(default_factory=list)


def pooled_outputs(
    g: GraphBuilder,
    config: BertConfig,
    weights: Weights,
    last_hidden: str,
    dense: tuple[DenseLayer, ...],
) -> Pooled:
    """cls_embedding, mean_embedding (through `dense`, if any) and pooler_output."""
    # Without Dense layers the pooled vectors are the outputs themselves (graph unchanged).
    suffix = "_pooled" if dense else ""
    (cls,) = g.op(
        "Gather",
        [last_hidden, g.const("zero_index", np.array(0, np.int64))],
        f"cls_embedding{suffix}",
        axis=1,
    )
    mean = _mean_pooling(g, last_hidden, f"mean_embedding{suffix}")
    width = _dense_layers(
        g, dense, config.hidden_size, {cls: "cls_embedding", mean: "mean_embedding"}
    )
    outputs = [
        float_output("cls_embedding", ["batch", width]),
        float_output("mean_embedding", ["batch", width]),
    ]
    pooler = None
    if weights.has("pooler.dense.weight"):
        (pooler,) = g.op(
            "Tanh", [g.linear(cls, weights, "pooler.dense", "pooler")], "pooler_output"
        )
        outputs.append(float_output("pooler_output", ["batch", config.hidden_size]))
    return Pooled(cls, mean, pooler, outputs)


def _dense_layers(
    g: GraphBuilder, dense: tuple[DenseLayer, ...], width: int, pooled: dict[str, str]
) -> int:
    """
    Each pooled vector (name -> output name) through the Dense layers, as sentence-transformers
    projects its pooled vector; the weights are shared. Returns the final width.
    """
    current = {source: source for source in pooled}
    for index, layer in enumerate(dense):
        out_features, in_features = layer.weight.shape
        if in_features != width:
            raise ModelSourceError(
                f"Dense layer {index} takes {in_features} values, but gets {width}"
            )
        w = g.const(f"dense{index}.weight_t", layer.weight.T.copy())
        b = None if layer.bias is None else g.const(f"dense{index}.bias", layer.bias)
        for source, x in current.items():
            (x,) = g.op("MatMul", [x, w], f"{source}_dense{index}_matmul")
            if b is not None:
                (x,) = g.op("Add", [x, b], f"{source}_dense{index}_bias")
            if layer.activation == "tanh":
                (x,) = g.op("Tanh", [x], f"{source}_dense{index}_tanh")
            current[source] = x
        width = out_features
    for source, x in current.items():
        if x != pooled[source]:
            g.op("Identity", [x], pooled[source])
    return width


def _mean_pooling(g: GraphBuilder, hidden: str, name: str) -> str:
    """`name` = sum(hidden * mask) / max(sum(mask), 1): padding never counts."""
    (mask,) = g.op("Cast", [ATTENTION_MASK], "mask_float", to=TensorProto.FLOAT)
    (mask3,) = g.op("Unsqueeze", [mask, g.const("axis_last", np.array([2], np.int64))], "mask_3d")
    (masked,) = g.op("Mul", [hidden, mask3], "masked_hidden")
    axis1 = g.const("axis_sequence", np.array([1], np.int64))
    (summed,) = g.op("ReduceSum", [masked, axis1], "hidden_sum", keepdims=0)
    (count,) = g.op("ReduceSum", [mask, axis1], "token_count", keepdims=1)
    (safe_count,) = g.op(
        "Max", [count, g.const("one", np.array(1.0, np.float32))], "token_count_safe"
    )
    (mean,) = g.op("Div", [summed, safe_count], name)
    return mean
