"""Graph optimization and precision conversion with ONNX Runtime's own tools."""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.fusion_options import FusionOptions
from onnxruntime.transformers.optimizer import optimize_model

from bert_runtime.config import Precision
from bert_runtime.preparation.model_config import BertConfig
from bert_runtime.preparation.onnx_builder import nodes_within

# Operators whose count proves a fusion happened; recorded in the manifest and asserted by tests.
FUSED_OPS = (
    "EmbedLayerNormalization",
    "Attention",
    "MultiHeadAttention",
    "QAttention",
    "PackedAttention",
    "SkipLayerNormalization",
    "BiasGelu",
)
# Kept in fp32 under fp16: reductions and the vocabulary softmax lose accuracy in half precision.
_FP32_OPS = ["ReduceSum", "Div", "Max", "Softmax", "Sigmoid", "TopK", "GatherND", "Gather", "Cast"]


def optimize(model: onnx.ModelProto, config: BertConfig, *, for_gpu: bool) -> onnx.ModelProto:
    """Fuse bias+Gelu (BiasGelu) and, for GPUs, Add+LayerNormalization (SkipLayerNormalization).

    ONNX Runtime's CPU SkipLayerNormalization is a scalar loop (a dependent sum and a division per
    element, skip_layer_norm.cc): 2.6-3.8x slower than the Add and LayerNormalization it replaces
    (onnxruntime 1.31.1, bench/layer_norm_bench.py), so CPU models keep the two.
    """
    options = FusionOptions("bert")
    options.enable_skip_layer_norm = for_gpu
    # The optimizer warns that our producer is not "pytorch"; the graph is built for it on purpose.
    optimizer_logger = logging.getLogger("onnxruntime.transformers.optimizer")
    previous = optimizer_logger.level
    optimizer_logger.setLevel(logging.ERROR)
    try:
        optimized = optimize_model(
            model,
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            optimization_options=options,
            opt_level=0,
            use_gpu=for_gpu,
        )
    finally:
        optimizer_logger.setLevel(previous)
    result: onnx.ModelProto = optimized.model
    return result


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Weights and activations in fp16, inputs/outputs and sensitive ops in fp32."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    wrapped = OnnxModel(model)
    wrapped.convert_float_to_float16(keep_io_types=True, op_block_list=_FP32_OPS)
    result: onnx.ModelProto = wrapped.model
    drop_duplicate_nodes(result)
    return result


def drop_duplicate_nodes(model: onnx.ModelProto) -> None:
    """Remove nodes that exactly repeat an earlier one (same name, inputs, outputs, attributes).

    The float16 converter names the Cast it puts in front of a blocked op after the tensor it
    casts, so two blocked readers of one fp16 tensor (the fill-mask head's GatherND and the CLS
    Gather both read last_hidden_state) get two identical Casts, and ONNX Runtime refuses the
    model ("two nodes with same node name"). Identical nodes compute the same output: keep one.
    """
    seen: set[bytes] = set()
    unique = []
    for node in model.graph.node:
        key = node.SerializeToString(deterministic=True)
        if key not in seen:
            seen.add(key)
            unique.append(node)
    del model.graph.node[:]
    model.graph.node.extend(unique)


def to_int8_dynamic(
    source: Path,
    target: Path,
    op_types: Sequence[str] = ("MatMul", "Attention"),
    exclude: Sequence[str] = (),
) -> None:
    """ONNX Runtime's dynamic int8 quantization, per-channel 7-bit weights: what prepare shipped
    before quantize.py, kept for benchmarks (gemm_ceiling, quantization_bench).

    Its activation scale is one per tensor, so per batch: on real checkpoints it loses accuracy
    and a text's answer depends on its batch-mates (see quantize.py). 7-bit weights
    (`reduce_range`) avoid saturating the u8 x s8 kernels of CPUs without VNNI.
    """
    with quiet_preprocessing_advice():
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            op_types_to_quantize=list(op_types),
            nodes_to_exclude=list(exclude),
            # Shape inference on optimizer output fails without a default tensor type.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


@contextlib.contextmanager
def quiet_preprocessing_advice() -> Iterator[None]:
    """Drop the quantizer's root-logger advice to pre-process the model while the block runs.

    The advice (shape inference, optimization) is already followed: the graph comes from ONNX
    Runtime's optimizer, so the warning would only confuse users.
    """
    root = logging.getLogger()
    root.addFilter(_drop_preprocessing_advice)
    try:
        yield
    finally:
        root.removeFilter(_drop_preprocessing_advice)


def _drop_preprocessing_advice(record: logging.LogRecord) -> bool:
    return "pre-processing before quantization" not in record.getMessage()


def unshare_gemm_weights(model: onnx.ModelProto) -> None:
    """Give each Gemm weight that another node also reads its own copy, in place.

    The quantizer rewrites Gemm(transB=1) as MatMul and transposes its weight initializer in place;
    for the fill-mask decoder that initializer is the word-embedding table EmbedLayerNormalization
    reads too.
    """
    readers = collections.Counter(name for node in model.graph.node for name in node.input)
    initializers = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Gemm" or len(node.input) < 2:
            continue
        weight = node.input[1]
        if weight in initializers and readers[weight] > 1:
            copy = onnx.TensorProto()
            copy.CopyFrom(initializers[weight])
            copy.name = f"{weight}_for_{node.name}"
            model.graph.initializer.append(copy)
            node.input[1] = copy.name


def count_ops(model: onnx.ModelProto) -> dict[str, int]:
    """Operator counts of the graph and its subgraphs (both forms of an If), for the manifest."""
    counts = collections.Counter(node.op_type for node in nodes_within(model.graph.node))
    return dict(sorted(counts.items()))


def apply_precision(model: onnx.ModelProto, precision: Precision) -> onnx.ModelProto:
    """Return the model converted to fp16, or fp32 as it is (int8 is int8.py's)."""
    if precision is Precision.FP16:
        return to_fp16(model)
    if precision is Precision.INT8:
        raise ValueError("int8 is quantize_checked's (preparation/int8.py)")
    return model
