"""Position ids as transformers numbers them for RoBERTa, XLM-RoBERTa and MPNet.

Those families do not count positions 0..n-1: transformers (5.24,
`create_position_ids_from_input_ids` in modeling_roberta.py, modeling_xlm_roberta.py and
modeling_mpnet.py) computes, from the token ids alone,

    mask = input_ids != padding_idx
    position_ids = cumsum(mask, axis=1) * mask + padding_idx

so a pad token, also one written literally in a text ("a <pad> b"), sits at `padding_idx` and is
not counted, and every other token at padding_idx + 1 + (tokens before it that are not pads).
The graph computes exactly that and hands it to EmbedLayerNormalization, whose position table is
then the checkpoint's whole table. Serving still feeds only input_ids and attention_mask.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from bert_runtime.preparation.onnx_builder import INPUT_IDS, GraphBuilder


def padding_aware_position_ids(g: GraphBuilder, padding_idx: int) -> str:
    """[batch, sequence] int32 position ids of `input_ids`, by transformers' rule above."""
    pad = g.const("padding_idx", np.array(padding_idx, np.int32))
    (is_pad,) = g.op("Equal", [INPUT_IDS, pad], "is_padding_token")
    (not_pad,) = g.op("Not", [is_pad], "is_counted_token")
    (counted,) = g.op("Cast", [not_pad], "counted_token", to=TensorProto.INT32)
    axis = g.const("position_cumsum_axis", np.array(1, np.int32))
    (running,) = g.op("CumSum", [counted, axis], "tokens_so_far")
    (kept,) = g.op("Mul", [running, counted], "pads_at_zero")
    (positions,) = g.op("Add", [kept, pad], "position_ids")
    return positions
