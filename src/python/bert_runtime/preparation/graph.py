"""Build the ONNX graph of a BERT-family model from its weights, without PyTorch.

The encoder is BERT's (bert_encoder.py: BERT, RoBERTa, XLM-R, MPNet, DistilBERT, ELECTRA) or
ModernBERT's (modernbert_graph.py); the pooled outputs (pooling_graph.py) and the task heads
(heads_graph.py) are the same on both. This module only puts them together in the graph's order.

Inputs (int32, [batch, sequence]): input_ids, attention_mask, token_type_ids; with a fill-mask head
also mask_positions (int64, [masks, 2]: row, position) and top_k (int64, [1]). Outputs:
last_hidden_state, cls_embedding, mean_embedding (through a sentence-transformers model's Dense
projections when it has them), pooler_output (when the checkpoint has a pooler),
class_logits and class_probabilities (classification head; the latter are the scores transformers'
pipeline reports, see `heads_graph.class_score_function`), mask_top_scores / mask_top_ids
(fill-mask head).
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from bert_runtime.preparation.bert_encoder import bert_encoder
from bert_runtime.preparation.families.family import Encoder
from bert_runtime.preparation.heads_graph import classification_head, fill_mask_head
from bert_runtime.preparation.model_config import BertConfig, Head
from bert_runtime.preparation.modernbert_graph import modernbert_encoder
from bert_runtime.preparation.onnx_builder import (
    INPUT_NAMES,
    LAST_HIDDEN_STATE,
    MS_DOMAIN,
    OPSET,
    GraphBuilder,
    float_output,
)
from bert_runtime.preparation.pooling_graph import pooled_outputs
from bert_runtime.preparation.st_settings import DenseLayer
from bert_runtime.preparation.weights import Weights


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
    g = GraphBuilder()
    if config.family.encoder is Encoder.MODERNBERT:
        hidden = modernbert_encoder(g, config, weights)
    else:
        hidden = bert_encoder(g, config, weights, fused_qkv=fused_qkv)
    (last_hidden,) = g.op("Identity", [hidden], LAST_HIDDEN_STATE)

    outputs = [float_output(LAST_HIDDEN_STATE, ["batch", "sequence", config.hidden_size])]
    pooled = pooled_outputs(g, config, weights, last_hidden, dense)
    outputs += pooled.outputs
    if Head.CLASSIFICATION in heads:
        outputs += classification_head(g, config, weights, pooled)

    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT32, ["batch", "sequence"])
        for name in INPUT_NAMES
    ]
    if Head.FILL_MASK in heads:
        mask_inputs, mask_outputs = fill_mask_head(g, config, weights, last_hidden)
        inputs += mask_inputs
        outputs += mask_outputs

    graph = helper.make_graph(g.nodes, "bert", inputs, outputs, g.initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)],
        producer_name="bert_runtime",
    )
    model.ir_version = 8
    return model
