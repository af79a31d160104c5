"""Build the ONNX graph of a BERT-family model from its weights, without PyTorch.

BERT, RoBERTa, XLM-R, MPNet, DistilBERT and ELECTRA share it (checkpoint.py reads the others'
weights under BERT's names; MPNet's attention takes its relative position bias, see
`_encoder_layer`). ModernBERT's encoder is its own (modernbert_graph.py); the pooling outputs and
heads here serve it too.

Why this shape: ONNX Runtime's transformer optimizer fuses attention and embeddings only in graphs
shaped exactly like the legacy TorchScript export, which is fragile to reproduce. So the graph
states those two fusions directly as the com.microsoft ops `EmbedLayerNormalization` and `Attention`
(with packed QKV weights), and leaves the simple, stable patterns (Add + LayerNormalization, bias
Add + Gelu) for the optimizer to fuse into `SkipLayerNormalization` and `BiasGelu`.

Inputs (int32, [batch, sequence]): input_ids, attention_mask, token_type_ids; with a fill-mask head
also mask_positions (int64, [masks, 2]: row, position) and top_k (int64, [1]). Outputs:
last_hidden_state, cls_embedding, mean_embedding (through a sentence-transformers model's Dense
projections when it has them), pooler_output (when the checkpoint has a pooler),
class_logits and class_probabilities (classification head; the latter are the scores transformers'
pipeline reports, see `class_score_function`), mask_top_scores / mask_top_ids (fill-mask head). The
fill-mask head runs only on the gathered [MASK] rows and does softmax + top-k in the graph, so
embedding requests never pay for the vocabulary projection and only k scores per mask leave the
device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bert_runtime.errors import MissingTensorsError, ModelSourceError
from bert_runtime.preparation.checkpoint import BertConfig, Head, Weights
from bert_runtime.preparation.positions import padding_aware_position_ids
from bert_runtime.preparation.relative_position import bias_by_distance
from bert_runtime.preparation.st_settings import DenseLayer

OPSET = 17
MS_DOMAIN = "com.microsoft"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class _GraphBuilder:
    """Accumulates nodes and initializers; names are made unique by a counter."""

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    _count: int = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def op(
        self,
        op_type: str,
        inputs: list[str],
        name: str,
        *,
        n_out: int = 1,
        domain: str = "",
        **attributes: Any,
    ) -> list[str]:
        self._count += 1
        outputs = [f"{name}" if n_out == 1 else f"{name}_{i}" for i in range(n_out)]
        node_name = f"{name}_node{self._count}"
        self.nodes.append(
            helper.make_node(op_type, inputs, outputs, name=node_name, domain=domain, **attributes)
        )
        return outputs

    def linear(
        self, x: str, weights: Weights, prefix: str, name: str, *, optional_bias: bool = False
    ) -> str:
        """
        x @ W.T + b, with W stored pre-transposed ([in, out]) as MatMul wants it. With
        `optional_bias` (ModernBERT's layers, saved without biases) a missing bias is left out.
        """
        w = self.const(f"{prefix}.weight_t", weights.get(f"{prefix}.weight").T.copy())
        (product,) = self.op("MatMul", [x, w], f"{name}_matmul")
        if optional_bias and not weights.has(f"{prefix}.bias"):
            return product
        b = self.const(f"{prefix}.bias", weights.get(f"{prefix}.bias"))
        (out,) = self.op("Add", [product, b], f"{name}_bias")
        return out

    def layer_norm(
        self,
        x: str,
        weights: Weights,
        prefix: str,
        eps: float,
        name: str,
        *,
        optional_bias: bool = False,
    ) -> str:
        """LayerNormalization; with `optional_bias`, a norm saved without bias gets zeros."""
        scale = weights.get(f"{prefix}.weight")
        gamma = self.const(f"{prefix}.weight", scale)
        if optional_bias and not weights.has(f"{prefix}.bias"):
            beta = self.const(f"{prefix}.bias", np.zeros_like(scale))
        else:
            beta = self.const(f"{prefix}.bias", weights.get(f"{prefix}.bias"))
        (out,) = self.op("LayerNormalization", [x, gamma, beta], name, axis=-1, epsilon=eps)
        return out


class ScoreFunction(StrEnum):
    """How a classification head's logits become the scores it reports."""

    SOFTMAX = "softmax"
    SIGMOID = "sigmoid"
    IDENTITY = "identity"


# Softmax over the last axis is opset 13+'s default.
_SCORE_OPS = {
    ScoreFunction.SOFTMAX: "Softmax",
    ScoreFunction.SIGMOID: "Sigmoid",
    ScoreFunction.IDENTITY: "Identity",
}


def classifier_labels(config: BertConfig, weights: Weights) -> int:
    """The classification head's label count: its weight's rows (id2label may be absent)."""
    return int(weights.get(f"{config.classifier_output}.weight").shape[0])


def class_score_function(config: BertConfig, weights: Weights) -> ScoreFunction:
    """
    transformers' text-classification pipeline's default: raw values for regression, sigmoid for
    multi-label or a single logit (cross-encoder rerankers: softmax of one logit is always 1),
    softmax otherwise.
    """
    if config.problem_type == "regression":
        return ScoreFunction.IDENTITY
    if (
        config.problem_type == "multi_label_classification"
        or classifier_labels(config, weights) == 1
    ):
        return ScoreFunction.SIGMOID
    return ScoreFunction.SOFTMAX


def build_graph(
    config: BertConfig,
    weights: Weights,
    heads: list[Head],
    dense: tuple[DenseLayer, ...] = (),
    *,
    fused_qkv: bool = True,
) -> onnx.ModelProto:
    """
    The full model: encoder, pooling outputs (then `dense`, if any) and the requested heads.
    `fused_qkv=False` projects Q, K and V with a MatMul of their own in every layer (as MPNet's
    always are), so int8 quantizes that projection like any other MatMul (see quantize.py).
    """
    g = _GraphBuilder()
    if config.modernbert:
        # Imported here: it builds on this module's builder and pooling.
        from bert_runtime.preparation.modernbert_graph import modernbert_encoder

        hidden = modernbert_encoder(g, config, weights)
    else:
        hidden = _embeddings(g, config, weights)
        bias = _relative_position_bias(g, config, weights)
        for layer in range(config.num_hidden_layers):
            hidden = _encoder_layer(g, config, weights, layer, hidden, bias, fused_qkv)
    (last_hidden,) = g.op("Identity", [hidden], "last_hidden_state")

    outputs = [_float_output("last_hidden_state", ["batch", "sequence", config.hidden_size])]
    # Without Dense layers the pooled vectors are the outputs themselves (graph unchanged).
    suffix = "_pooled" if dense else ""
    (cls,) = g.op(
        "Gather",
        [last_hidden, g.const("zero_index", np.array(0, np.int64))],
        f"cls_embedding{suffix}",
        axis=1,
    )
    (mean,) = _mean_pooling(g, f"mean_embedding{suffix}")
    width = _dense_layers(
        g, dense, config.hidden_size, {cls: "cls_embedding", mean: "mean_embedding"}
    )
    outputs.append(_float_output("cls_embedding", ["batch", width]))
    outputs.append(_float_output("mean_embedding", ["batch", width]))

    pooled = None
    if weights.has("pooler.dense.weight"):
        (pooled,) = g.op(
            "Tanh", [g.linear(cls, weights, "pooler.dense", "pooler")], "pooler_output"
        )
        outputs.append(_float_output("pooler_output", ["batch", config.hidden_size]))
    if Head.CLASSIFICATION in heads:
        logits = _classifier(g, config, weights, cls, pooled, mean)
        labels = classifier_labels(config, weights)
        g.op("Identity", [logits], "class_logits")
        function = class_score_function(config, weights)
        g.op(_SCORE_OPS[function], [logits], "class_probabilities")
        outputs += [
            _float_output("class_logits", ["batch", labels]),
            _float_output("class_probabilities", ["batch", labels]),
        ]

    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT32, ["batch", "sequence"])
        for name in INPUT_NAMES
    ]
    if Head.FILL_MASK in heads:
        _fill_mask_head(g, config, weights)
        inputs += [
            helper.make_tensor_value_info("mask_positions", TensorProto.INT64, ["masks", 2]),
            helper.make_tensor_value_info("top_k", TensorProto.INT64, [1]),
        ]
        outputs += [
            _float_output("mask_top_scores", ["masks", "k"]),
            helper.make_tensor_value_info("mask_top_ids", TensorProto.INT64, ["masks", "k"]),
        ]

    graph = helper.make_graph(g.nodes, "bert", inputs, outputs, g.initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)],
        producer_name="bert_runtime",
    )
    model.ir_version = 8
    return model


def _float_output(name: str, shape: list[str | int | None]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _embeddings(g: _GraphBuilder, config: BertConfig, weights: Weights) -> str:
    """
    EmbedLayerNormalization numbers positions 0..n-1 unless it is given position ids: RoBERTa's,
    XLM-R's and MPNet's are computed from the token ids as transformers does (positions.py).
    """
    positions = weights.get("embeddings.position_embeddings.weight")
    if config.type_vocab_size == 0:
        # DistilBERT and MPNet have no token types: zeros add nothing to either segment.
        token_types = np.zeros((2, config.embedding_width), np.float32)
    else:
        token_types = weights.get("embeddings.token_type_embeddings.weight")
    if len(token_types) == 1:
        # RoBERTa has one token type (transformers gives it no token_type_ids); a pair's second
        # text, marked 1, reads the same row.
        token_types = np.repeat(token_types, 2, axis=0)
    names = [
        g.const("word_embeddings", weights.get("embeddings.word_embeddings.weight")),
        g.const("position_embeddings", np.ascontiguousarray(positions)),
        g.const("token_type_embeddings", token_types),
        g.const("embeddings.LayerNorm.weight", weights.get("embeddings.LayerNorm.weight")),
        g.const("embeddings.LayerNorm.bias", weights.get("embeddings.LayerNorm.bias")),
    ]
    word, position, token_type, gamma, beta = names
    inputs = ["input_ids", "token_type_ids", word, position, token_type, gamma, beta]
    inputs.append("attention_mask")
    if config.padding_idx is not None:
        inputs.append(padding_aware_position_ids(g, config.padding_idx))
    out, _ = g.op(
        "EmbedLayerNormalization",
        inputs,
        "embeddings",
        n_out=2,
        domain=MS_DOMAIN,
        epsilon=config.layer_norm_eps,
    )
    if config.embedding_width != config.hidden_size:
        # ELECTRA's narrower embeddings, projected to the layers' width.
        return g.linear(out, weights, "embeddings_project", "embeddings_project")
    return out


def _classifier(
    g: _GraphBuilder,
    config: BertConfig,
    weights: Weights,
    cls: str,
    pooled: str | None,
    mean: str,
) -> str:
    """
    The classification logits: BERT's classifier reads the pooler's output; the others put a
    hidden layer of their own on the first token's vector (RoBERTa: dense + tanh, ELECTRA: dense +
    gelu, DistilBERT: pre_classifier + ReLU), then the last layer. ModernBERT's reads the first
    token's vector or the mean, through its prediction head (dense, activation, norm).
    """
    if config.modernbert:
        source = cls if config.modernbert.classifier_pooling == "cls" else mean
        head_out = _prediction_head(g, config, weights, source, "classifier_head")
        return g.linear(head_out, weights, "classifier", "classifier")
    head = config.first_token_classifier
    if head:
        op_type, domain = _ACTIVATION_OPS[head.activation]
        dense = g.linear(cls, weights, head.hidden, "classifier_dense")
        (activated,) = g.op(op_type, [dense], "classifier_activation", domain=domain)
        return g.linear(activated, weights, head.output, "classifier")
    if pooled is None:
        raise MissingTensorsError(weights.source, ["pooler.dense.weight"])
    return g.linear(pooled, weights, config.classifier_output, "classifier")


def _relative_position_bias(g: _GraphBuilder, config: BertConfig, weights: Weights) -> str | None:
    """
    MPNet's [1, heads, sequence, sequence] attention bias, shared by every layer: the precomputed
    per-distance table gathered at key - query for this batch's length (None without one).
    """
    if not config.relative_attention_buckets:
        return None
    table = weights.get("encoder.relative_attention_bias.weight")
    by_distance = g.const(
        "relative_attention_bias_by_distance", bias_by_distance(table, config.max_positions)
    )
    distance = key_minus_query(g)
    middle = g.const("zero_distance_row", np.array(config.max_positions - 1, np.int64))
    (rows,) = g.op("Add", [distance, middle], "distance_rows")
    (bias,) = g.op("Gather", [by_distance, rows], "bias_by_pair", axis=0)
    (per_head,) = g.op("Transpose", [bias], "bias_per_head", perm=[2, 0, 1])
    (out,) = g.op("Unsqueeze", [per_head, "row_axis"], "relative_position_bias")
    return out


def key_minus_query(g: _GraphBuilder) -> str:
    """[sequence, sequence] int64: key position - query position, for this batch's length."""
    (shape,) = g.op("Shape", ["input_ids"], "input_shape")
    (length,) = g.op("Gather", [shape, g.const("sequence_axis", np.array(1, np.int64))], "length")
    start = g.const("range_start", np.array(0, np.int64))
    step = g.const("range_step", np.array(1, np.int64))
    (positions,) = g.op("Range", [start, length, step], "positions")
    (keys,) = g.op("Unsqueeze", [positions, g.const("row_axis", np.array([0], np.int64))], "keys")
    (queries,) = g.op(
        "Unsqueeze", [positions, g.const("column_axis", np.array([1], np.int64))], "queries"
    )
    (distance,) = g.op("Sub", [keys, queries], "key_minus_query")
    return distance


# A classification head's activation as an operator and its domain (Gelu: erf-exact, as
# transformers' "gelu").
_ACTIVATION_OPS = {"tanh": ("Tanh", ""), "gelu": ("Gelu", MS_DOMAIN), "relu": ("Relu", "")}


def _encoder_layer(
    g: _GraphBuilder,
    config: BertConfig,
    weights: Weights,
    layer: int,
    x: str,
    bias: str | None = None,
    fused_qkv: bool = True,
) -> str:
    p = f"encoder.layer.{layer}"
    # Packed QKV: [hidden, 3 * hidden], columns ordered q, k, v, as com.microsoft.Attention expects.
    qkv_w = np.concatenate(
        [weights.get(f"{p}.attention.self.{part}.weight").T for part in ("query", "key", "value")],
        axis=1,
    )
    qkv_b = np.concatenate(
        [weights.get(f"{p}.attention.self.{part}.bias") for part in ("query", "key", "value")]
    )
    weight = g.const(f"{p}.attention.qkv.weight", qkv_w)
    qkv_bias = g.const(f"{p}.attention.qkv.bias", qkv_b)
    if bias is None and fused_qkv:
        # Attention projects QKV itself.
        (context,) = g.op(
            "Attention",
            [x, weight, qkv_bias, "attention_mask"],
            f"l{layer}_attention",
            domain=MS_DOMAIN,
            num_heads=config.num_attention_heads,
        )
    else:
        # The projection as a MatMul of its own, which int8 quantizes like every other, and
        # MultiHeadAttention adds the QKV bias (and MPNet's position bias: Attention takes one
        # too, but its int8 form QAttention has none).
        (qkv,) = g.op("MatMul", [x, weight], f"l{layer}_qkv_matmul")
        thirds = g.const(f"l{layer}_qkv_split", np.array([config.hidden_size] * 3, np.int64))
        q, k, v = g.op("Split", [qkv, thirds], f"l{layer}_qkv", n_out=3, axis=-1)
        position_bias = [bias] if bias is not None else []
        (context,) = g.op(
            "MultiHeadAttention",
            [q, k, v, qkv_bias, "attention_mask", *position_bias],
            f"l{layer}_attention",
            domain=MS_DOMAIN,
            num_heads=config.num_attention_heads,
        )
    projected = g.linear(context, weights, f"{p}.attention.output.dense", f"l{layer}_attn_out")
    (residual,) = g.op("Add", [projected, x], f"l{layer}_attn_residual")
    attended = g.layer_norm(
        residual, weights, f"{p}.attention.output.LayerNorm", config.layer_norm_eps, f"l{layer}_ln1"
    )

    intermediate = g.linear(attended, weights, f"{p}.intermediate.dense", f"l{layer}_ffn_in")
    (activated,) = g.op("Gelu", [intermediate], f"l{layer}_gelu", domain=MS_DOMAIN)
    ffn_out = g.linear(activated, weights, f"{p}.output.dense", f"l{layer}_ffn_out")
    (residual2,) = g.op("Add", [ffn_out, attended], f"l{layer}_ffn_residual")
    return g.layer_norm(
        residual2, weights, f"{p}.output.LayerNorm", config.layer_norm_eps, f"l{layer}_ln2"
    )


def _dense_layers(
    g: _GraphBuilder, dense: tuple[DenseLayer, ...], width: int, pooled: dict[str, str]
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


def _mean_pooling(g: _GraphBuilder, name: str) -> list[str]:
    """`name` = sum(hidden * mask) / max(sum(mask), 1): padding never counts."""
    (mask,) = g.op("Cast", ["attention_mask"], "mask_float", to=TensorProto.FLOAT)
    (mask3,) = g.op("Unsqueeze", [mask, g.const("axis_last", np.array([2], np.int64))], "mask_3d")
    (masked,) = g.op("Mul", ["last_hidden_state", mask3], "masked_hidden")
    axis1 = g.const("axis_sequence", np.array([1], np.int64))
    (summed,) = g.op("ReduceSum", [masked, axis1], "hidden_sum", keepdims=0)
    (count,) = g.op("ReduceSum", [mask, axis1], "token_count", keepdims=1)
    (safe_count,) = g.op(
        "Max", [count, g.const("one", np.array(1.0, np.float32))], "token_count_safe"
    )
    return g.op("Div", [summed, safe_count], name)


def _prediction_head(
    g: _GraphBuilder, config: BertConfig, weights: Weights, x: str, name: str
) -> str:
    """
    Dense, activation, norm: the masked-LM head's transform (BERT's and its relatives', gelu), and
    ModernBERT's prediction head, in front of its decoder and its classifier alike (no biases).
    """
    if config.modernbert:
        norm, activation = "head.norm", config.modernbert.head_activation
    else:
        norm, activation = "cls.predictions.transform.LayerNorm", "gelu"
    optional = config.modernbert is not None
    dense = g.linear(x, weights, config.masked_lm_head, f"{name}_dense", optional_bias=optional)
    op_type, domain = _ACTIVATION_OPS[activation]
    (activated,) = g.op(op_type, [dense], f"{name}_activation", domain=domain)
    return g.layer_norm(
        activated, weights, norm, config.layer_norm_eps, f"{name}_norm", optional_bias=optional
    )


def _fill_mask_head(g: _GraphBuilder, config: BertConfig, weights: Weights) -> None:
    (at_masks,) = g.op("GatherND", ["last_hidden_state", "mask_positions"], "mask_hidden")
    normed = _prediction_head(g, config, weights, at_masks, "mlm")
    # The decoder is tied to the word embeddings; Gemm with transB reads the same initializer, no
    # copy.
    decoder = "word_embeddings"
    own_decoder, decoder_bias = (
        ("decoder.weight", "decoder.bias")
        if config.modernbert
        else ("cls.predictions.decoder.weight", "cls.predictions.bias")
    )
    if weights.has(own_decoder):
        decoder = g.const("mlm_decoder", weights.get(own_decoder))
    inputs = [normed, decoder]
    if not config.modernbert or weights.has(decoder_bias):  # ModernBERT's decoder_bias=False
        inputs.append(g.const("mlm_bias", weights.get(decoder_bias)))
    (logits,) = g.op("Gemm", inputs, "mlm_logits", transB=1)
    (probabilities,) = g.op("Softmax", [logits], "mlm_probabilities", axis=-1)
    g.op("TopK", [probabilities, "top_k"], "mask_top", n_out=2, axis=-1)
    g.op("Identity", ["mask_top_0"], "mask_top_scores")
    g.op("Identity", ["mask_top_1"], "mask_top_ids")
