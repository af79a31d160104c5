"""The task heads on top of an encoder's output: classification and fill-mask.

Apart from graph.py so that prepare.py can ask how a classifier's scores are computed
(`class_score_function`) without the graph, and because both encoders (BERT's and ModernBERT's)
share the heads. The fill-mask head runs only on the gathered [MASK] rows and does softmax + top-k
in the graph, so embedding requests never pay for the vocabulary projection and only k scores per
mask leave the device.
"""

from __future__ import annotations

from enum import StrEnum

import onnx
from onnx import TensorProto, helper

from bert_runtime.errors import MissingTensorsError
from bert_runtime.preparation.model_config import BertConfig
from bert_runtime.preparation.onnx_builder import WORD_EMBEDDINGS, GraphBuilder, float_output
from bert_runtime.preparation.pooling_graph import Pooled
from bert_runtime.preparation.weights import Weights

MASK_POSITIONS = "mask_positions"
TOP_K = "top_k"


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


def classification_head(
    g: GraphBuilder, config: BertConfig, weights: Weights, pooled: Pooled
) -> list[onnx.ValueInfoProto]:
    """class_logits and class_probabilities (the scores transformers' pipeline reports)."""
    logits = _classifier(g, config, weights, pooled)
    labels = classifier_labels(config, weights)
    g.op("Identity", [logits], "class_logits")
    function = class_score_function(config, weights)
    g.op(_SCORE_OPS[function], [logits], "class_probabilities")
    return [
        float_output("class_logits", ["batch", labels]),
        float_output("class_probabilities", ["batch", labels]),
    ]


def fill_mask_head(
    g: GraphBuilder, config: BertConfig, weights: Weights, last_hidden: str
) -> tuple[list[onnx.ValueInfoProto], list[onnx.ValueInfoProto]]:
    """
    The masked-LM head on the rows `mask_positions` names (int64, [masks, 2]: row, position): the
    `top_k` (int64, [1]) scores and token ids of each. Returns the inputs and outputs it adds.
    """
    (at_masks,) = g.op("GatherND", [last_hidden, MASK_POSITIONS], "mask_hidden")
    normed = _prediction_head(g, config, weights, at_masks, "mlm")
    # The decoder is tied to the word embeddings; Gemm with transB reads the same initializer, no
    # copy.
    family = config.family
    decoder = WORD_EMBEDDINGS
    if weights.has(family.decoder):
        decoder = g.const("mlm_decoder", weights.get(family.decoder))
    inputs = [normed, decoder]
    # ModernBERT's may have none (decoder_bias=False).
    if not family.optional_biases or weights.has(family.decoder_bias):
        inputs.append(g.const("mlm_bias", weights.get(family.decoder_bias)))
    (logits,) = g.op("Gemm", inputs, "mlm_logits", transB=1)
    (probabilities,) = g.op("Softmax", [logits], "mlm_probabilities", axis=-1)
    scores, ids = g.op("TopK", [probabilities, TOP_K], "mask_top", n_out=2, axis=-1)
    g.op("Identity", [scores], "mask_top_scores")
    g.op("Identity", [ids], "mask_top_ids")
    graph_inputs = [
        helper.make_tensor_value_info(MASK_POSITIONS, TensorProto.INT64, ["masks", 2]),
        helper.make_tensor_value_info(TOP_K, TensorProto.INT64, [1]),
    ]
    graph_outputs = [
        float_output("mask_top_scores", ["masks", "k"]),
        helper.make_tensor_value_info("mask_top_ids", TensorProto.INT64, ["masks", "k"]),
    ]
    return graph_inputs, graph_outputs


def _classifier(g: GraphBuilder, config: BertConfig, weights: Weights, pooled: Pooled) -> str:
    """
    The classification logits: BERT's classifier reads the pooler's output; the others put a
    hidden layer of their own on the first token's vector (RoBERTa: dense + tanh, ELECTRA: dense +
    gelu, DistilBERT: pre_classifier + ReLU), then the last layer. ModernBERT's reads the first
    token's vector or the mean, through its prediction head (dense, activation, norm).
    """
    if config.modernbert:
        source = pooled.cls if config.modernbert.classifier_pooling == "cls" else pooled.mean
        head_out = _prediction_head(g, config, weights, source, "classifier_head")
        return g.linear(head_out, weights, "classifier", "classifier")
    head = config.first_token_classifier
    if head:
        dense = g.linear(pooled.cls, weights, head.hidden, "classifier_dense")
        activated = g.activation(dense, head.activation, "classifier_activation")
        return g.linear(activated, weights, head.output, "classifier")
    if pooled.pooler is None:
        raise MissingTensorsError(weights.source, ["pooler.dense.weight"])
    return g.linear(pooled.pooler, weights, config.classifier_output, "classifier")


def _prediction_head(
    g: GraphBuilder, config: BertConfig, weights: Weights, x: str, name: str
) -> str:
    """
    Dense, activation, norm: the masked-LM head's transform (BERT's and its relatives', gelu), and
    ModernBERT's prediction head, in front of its decoder and its classifier alike (no biases).
    """
    family = config.family
    optional = family.optional_biases
    dense = g.linear(x, weights, family.masked_lm_head, f"{name}_dense", optional_bias=optional)
    activated = g.activation(dense, config.head_activation, f"{name}_activation")
    return g.layer_norm(
        activated,
        weights,
        family.prediction_head_norm,
        config.layer_norm_eps,
        f"{name}_norm",
        optional_bias=optional,
    )
