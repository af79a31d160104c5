"""The graph changes that let ONNX Runtime's CUDA attention kernels run: 1-D mask, packing mode.

**1-D mask.** The graph builder gives every Attention / MultiHeadAttention node the 2-D
`attention_mask` ([batch, sequence] of 0/1). ONNX Runtime's CUDA kernels read that as a general
key-padding mask and then take the unfused path: cuDNN's SDPA and the TensorRT fused kernels
accept only no mask or a 1-D mask of per-row token counts (contrib_ops/cuda/bert/attention.cc and
multihead_attention.cc, read at a recent main since the 1.31.1 tag could not be fetched here;
gpu_bench's kernel probe shows what 1.31.1 picks). The operators' schemas in the 1.31.1 wheel
take that form: "when input has right-side padding, mask_index is one dimension with shape
(batch_size), where value is actual sequence length excluding padding" (Attention), and a
`key_padding_mask` of shape (batch_size) (MultiHeadAttention). Our batches are always
right-padded (BatchPlanner.pad), so the count is exact. EmbedLayerNormalization already computes
it (its second output, `mask_index`); ModernBERT, which has no such node, gets a ReduceSum over
the mask. On CPU the outputs do not change (bit-identical for every fixture when checked;
cuda_attention_test allows 1e-6). Flash attention wants no mask at all and memory-efficient
attention the (3 * batch + 2) form, so neither is reached this way.

**Packing mode.** ONNX Runtime's `PackingMode` (onnxruntime/transformers/convert_to_packing_mode.py)
removes padding inside the graph: RemovePadding after the embeddings, PackedAttention per layer
(GEMMs and attention over real tokens only), RestorePadding after the last layer norm. It has no
CPU kernels (RemovePadding, PackedAttention are CUDA-only), handles only Attention graphs (the
tool finds no MatMul in front of MPNet's or ModernBERT's MultiHeadAttention, whose queries come
from a Split or RotaryEmbedding), and puts RestorePadding after the graph's *last* layer norm, so
a graph whose head has a layer norm of its own (masked-LM, ModernBERT) is refused, not broken.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bert_runtime.errors import UnsupportedModelError

logger = logging.getLogger(__name__)

MASK_INPUT = "attention_mask"
SEQUENCE_LENGTHS = "sequence_lengths"
# Bump when what `for_cuda` does to a graph changes, so prepared CUDA models are rebuilt.
REVISION = "1"
# The mask input's position in each attention operator.
_MASK_INDEX = {"Attention": 3, "MultiHeadAttention": 4}
_LAST_HIDDEN = "last_hidden_state"


def for_cuda(
    model: onnx.ModelProto, *, packing: bool = False
) -> tuple[onnx.ModelProto, dict[str, str]]:
    """The model as CUDA serves it, and the manifest notes that say what was done."""
    rewired = use_sequence_lengths(model)
    notes = {"attention_mask": "sequence_lengths"} if rewired else {}
    if packing:
        model = to_packing_mode(model)
        notes["packing"] = "true"
    return model, notes


def cache_variant(packing: bool) -> str:
    """What the prepare cache key adds for a CUDA model."""
    return f"cuda-attention={REVISION}" + ("/packing" if packing else "")


def use_sequence_lengths(model: onnx.ModelProto) -> int:
    """
    Feed every attention node that reads the 2-D mask a 1-D int32 [batch] token count instead,
    in place; returns how many nodes were rewired.
    """
    readers = [
        node
        for node in model.graph.node
        if node.op_type in _MASK_INDEX
        and len(node.input) > _MASK_INDEX[node.op_type]
        and node.input[_MASK_INDEX[node.op_type]] == MASK_INPUT
    ]
    if not readers:
        return 0
    lengths = _embedding_mask_index(model) or _count_mask(model)
    for node in readers:
        node.input[_MASK_INDEX[node.op_type]] = lengths
    return len(readers)


def _embedding_mask_index(model: onnx.ModelProto) -> str | None:
    """EmbedLayerNormalization's mask_index output, when it reads the graph's mask."""
    for node in model.graph.node:
        reads_mask = len(node.input) > 7 and node.input[7] == MASK_INPUT
        if node.op_type == "EmbedLayerNormalization" and reads_mask and len(node.output) > 1:
            return str(node.output[1]) or None
    return None


def _count_mask(model: onnx.ModelProto) -> str:
    """Add nodes computing int32 [batch] = sum of each mask row, first in the graph."""
    axes = "sequence_lengths_axes"
    model.graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), axes))
    nodes = [
        helper.make_node(
            "Cast",
            [MASK_INPUT],
            ["sequence_lengths_float"],
            "sequence_lengths_cast",
            to=TensorProto.FLOAT,
        ),
        helper.make_node(
            "ReduceSum",
            ["sequence_lengths_float", axes],
            ["sequence_lengths_sum"],
            "sequence_lengths_sum",
            keepdims=0,
        ),
        helper.make_node(
            "Cast",
            ["sequence_lengths_sum"],
            [SEQUENCE_LENGTHS],
            "sequence_lengths_int",
            to=TensorProto.INT32,
        ),
    ]
    for index, node in enumerate(nodes):
        model.graph.node.insert(index, node)
    return SEQUENCE_LENGTHS


def to_packing_mode(model: onnx.ModelProto) -> onnx.ModelProto:
    """
    ONNX Runtime's PackingMode conversion, after checking it fits this graph; raises
    UnsupportedModelError where it does not.
    """
    ops = [node.op_type for node in model.graph.node]
    if "MultiHeadAttention" in ops or "Attention" not in ops:
        raise UnsupportedModelError(
            "packing mode converts Attention graphs only (BERT, RoBERTa, XLM-R, DistilBERT, "
            "ELECTRA); MPNet's and ModernBERT's MultiHeadAttention takes its queries from a Split "
            "or RotaryEmbedding, which ONNX Runtime's PackingMode does not follow"
        )
    if not _last_norm_feeds_last_hidden_state(model):
        raise UnsupportedModelError(
            "packing mode restores padding after the graph's last layer norm, and this model's "
            "head has one of its own (a masked-LM head): its output would stay packed"
        )
    attention = ops.count("Attention")
    # Imported here: ONNX Runtime's transformers tools put their own folder on sys.path, which
    # this converter's absolute imports (`from constants import ...`) need.
    import onnxruntime.transformers  # noqa: F401
    from onnxruntime.transformers.convert_to_packing_mode import PackingMode
    from onnxruntime.transformers.onnx_model import OnnxModel

    wrapped = OnnxModel(model)
    try:
        PackingMode(wrapped).convert()
    except Exception as error:  # the tool raises bare asserts from shape inference
        raise UnsupportedModelError(f"packing mode conversion failed: {error!r}") from error
    converted: onnx.ModelProto = wrapped.model
    counts = [node.op_type for node in converted.graph.node]
    if counts.count("PackedAttention") != attention or counts.count("RemovePadding") != 1:
        raise UnsupportedModelError(
            f"packing mode converted {counts.count('PackedAttention')} of {attention} Attention "
            "nodes; a partly packed graph is not served"
        )
    logger.info("packing mode: %d PackedAttention nodes", attention)
    return converted


def _last_norm_feeds_last_hidden_state(model: onnx.ModelProto) -> bool:
    """Whether last_hidden_state is, through copies and casts, the last layer norm's output."""
    producers = {output: node for node in model.graph.node for output in node.output}
    name = _LAST_HIDDEN
    while name in producers and producers[name].op_type in ("Identity", "Cast"):
        name = producers[name].input[0]
    norms = [
        node
        for node in model.graph.node
        if node.op_type in ("LayerNormalization", "SkipLayerNormalization")
    ]
    return bool(norms) and norms[-1].output[0] == name
