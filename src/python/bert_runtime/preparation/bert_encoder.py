"""The encoder BERT, RoBERTa, XLM-R, MPNet, DistilBERT and ELECTRA share, as ONNX.

weights.py reads the others' weights under BERT's names, so one encoder serves them all; what
differs between them is in their config: positions counted past the padding index (positions.py),
token types or none, ELECTRA's narrower embeddings, MPNet's relative position bias in attention.
ModernBERT's encoder is its own (modernbert_graph.py).

Why this shape: ONNX Runtime's transformer optimizer fuses attention and embeddings only in graphs
shaped exactly like the legacy TorchScript export, which is fragile to reproduce. So the encoder
states those two fusions directly as the com.microsoft ops `EmbedLayerNormalization` and `Attention`
(with packed QKV weights), and leaves the simple, stable patterns (Add + LayerNormalization, bias
Add + Gelu) for the optimizer to fuse into `SkipLayerNormalization` (for CUDA only: optimize.py)
and `BiasGelu`.
"""

from __future__ import annotations

import numpy as np

from bert_runtime.preparation.model_config import BertConfig
from bert_runtime.preparation.onnx_builder import (
    ATTENTION_MASK,
    INPUT_IDS,
    MS_DOMAIN,
    ROW_AXIS,
    TOKEN_TYPE_IDS,
    WORD_EMBEDDINGS,
    GraphBuilder,
    key_minus_query,
)
from bert_runtime.preparation.positions import padding_aware_position_ids
from bert_runtime.preparation.relative_position import bias_by_distance
from bert_runtime.preparation.weights import Weights


def bert_encoder(
    g: GraphBuilder, config: BertConfig, weights: Weights, *, fused_qkv: bool = True
) -> str:
    """Embeddings and every layer; returns the last hidden state's name (see build_graph)."""
    hidden = _embeddings(g, config, weights)
    bias = _relative_position_bias(g, config, weights)
    for layer in range(config.num_hidden_layers):
        hidden = _encoder_layer(g, config, weights, layer, hidden, bias, fused_qkv)
    return hidden


def _embeddings(g: GraphBuilder, config: BertConfig, weights: Weights) -> str:
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
        g.const(WORD_EMBEDDINGS, weights.get("embeddings.word_embeddings.weight")),
        g.const("position_embeddings", np.ascontiguousarray(positions)),
        g.const("token_type_embeddings", token_types),
        g.const("embeddings.LayerNorm.weight", weights.get("embeddings.LayerNorm.weight")),
        g.const("embeddings.LayerNorm.bias", weights.get("embeddings.LayerNorm.bias")),
    ]
    word, position, token_type, gamma, beta = names
    inputs = [INPUT_IDS, TOKEN_TYPE_IDS, word, position, token_type, gamma, beta]
    inputs.append(ATTENTION_MASK)
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


def _relative_position_bias(g: GraphBuilder, config: BertConfig, weights: Weights) -> str | None:
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
    (out,) = g.op("Unsqueeze", [per_head, ROW_AXIS], "relative_position_bias")
    return out


def _encoder_layer(
    g: GraphBuilder,
    config: BertConfig,
    weights: Weights,
    layer: int,
    x: str,
    bias: str | None = None,
    fused_qkv: bool = True,
) -> str:
    p = f"encoder.layer.{layer}"
    # Each [hidden, hidden]; packed as [hidden, 3 * hidden], columns ordered q, k, v, as
    # com.microsoft.Attention expects.
    q_w, k_w, v_w = (
        weights.get(f"{p}.attention.self.{part}.weight").T for part in ("query", "key", "value")
    )
    qkv_w = np.concatenate([q_w, k_w, v_w], axis=1)
    qkv_b = np.concatenate(
        [weights.get(f"{p}.attention.self.{part}.bias") for part in ("query", "key", "value")]
    )
    qkv_bias = g.const(f"{p}.attention.qkv.bias", qkv_b)
    if bias is None and fused_qkv:
        # Attention projects QKV itself.
        (context,) = g.op(
            "Attention",
            [x, g.const(f"{p}.attention.qkv.weight", qkv_w), qkv_bias, ATTENTION_MASK],
            f"l{layer}_attention",
            domain=MS_DOMAIN,
            num_heads=config.num_attention_heads,
        )
    else:
        # The projection as MatMuls of their own, which int8 quantizes like every other, and
        # MultiHeadAttention adds the QKV bias (and MPNet's position bias: Attention takes one
        # too, but its int8 form QAttention has none). int8 gets one MatMul per part, which share
        # one quantized input: the CPU MultiHeadAttention takes no packed QKV (onnxruntime 1.31),
        # and a Split of one product would copy it once more.
        if fused_qkv:
            weight = g.const(f"{p}.attention.qkv.weight", qkv_w)
            (qkv,) = g.op("MatMul", [x, weight], f"l{layer}_qkv_matmul")
            thirds = g.const(f"l{layer}_qkv_split", np.array([config.hidden_size] * 3, np.int64))
            q, k, v = g.op("Split", [qkv, thirds], f"l{layer}_qkv", n_out=3, axis=-1)
        else:
            q, k, v = (
                g.op(
                    "MatMul",
                    [x, g.const(f"{p}.attention.{part}.weight", w)],
                    f"l{layer}_{part}_matmul",
                )[0]
                for part, w in (("q", q_w), ("k", k_w), ("v", v_w))
            )
        position_bias = [bias] if bias is not None else []
        (context,) = g.op(
            "MultiHeadAttention",
            [q, k, v, qkv_bias, ATTENTION_MASK, *position_bias],
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
