"""ModernBERT's encoder as ONNX, from its weights (graph.py adds the pooled outputs and heads).

ModernBERT differs from BERT in every layer: pre-norm (the first layer has no attention norm), no
position table but rotary positions on queries and keys (one base for global layers, another for
windowed ones), attention that on most layers sees only keys within half a window of each token,
a gated GELU feed-forward (one projection holds input and gate), no biases, and a final norm.

It is stated with com.microsoft operators ONNX Runtime runs fused: RotaryEmbedding and
MultiHeadAttention (the window as an additive bias, the padding as its key mask), so no fusion
pass has to recognize the pattern. For CUDA the optimizer still fuses Add + LayerNormalization.
"""

from __future__ import annotations

import numpy as np

from bert_runtime.preparation.model_config import BertConfig
from bert_runtime.preparation.onnx_builder import (
    ATTENTION_MASK,
    INPUT_IDS,
    MS_DOMAIN,
    WORD_EMBEDDINGS,
    GraphBuilder,
    key_minus_query,
)
from bert_runtime.preparation.weights import Weights

# What a key outside the window adds to its attention score: ONNX Runtime's own mask value, which
# softmax turns into exactly 0 in float32, and which float16 can hold.
_OUTSIDE_WINDOW = -10_000.0


def modernbert_encoder(g: GraphBuilder, config: BertConfig, weights: Weights) -> str:
    """Embeddings, every layer and the final norm; returns the last hidden state's name."""
    settings = config.modernbert
    assert settings is not None
    eps = config.layer_norm_eps
    table = g.const(WORD_EMBEDDINGS, weights.get("embeddings.tok_embeddings.weight"))
    (embedded,) = g.op("Gather", [table, INPUT_IDS], "token_embeddings", axis=0)
    hidden = g.layer_norm(
        embedded, weights, "embeddings.norm", eps, "embeddings_norm", optional_bias=True
    )
    window = None if all(settings.global_layers) else _window_bias(g, settings.half_window)
    head_size = config.hidden_size // config.num_attention_heads
    # Positions 0, 1, ... of each text: RotaryEmbedding's offset form of position_ids.
    g.const("rotary_position_offset", np.array([0], np.int64))
    rotary = {
        True: _rotary_caches(g, "global", settings.global_rope_theta, head_size, config),
        False: _rotary_caches(g, "local", settings.local_rope_theta, head_size, config),
    }
    for layer, is_global in enumerate(settings.global_layers):
        hidden = _layer(g, config, weights, layer, hidden, rotary[is_global], window, is_global)
    return g.layer_norm(hidden, weights, "final_norm", eps, "final_norm", optional_bias=True)


def _layer(
    g: GraphBuilder,
    config: BertConfig,
    weights: Weights,
    layer: int,
    x: str,
    rotary: tuple[str, str],
    window: str | None,
    is_global: bool,
) -> str:
    p = f"layers.{layer}"
    eps = config.layer_norm_eps
    hidden = config.hidden_size
    normed = x
    if layer:  # the first layer's attention norm is an identity in transformers
        normed = g.layer_norm(
            x, weights, f"{p}.attn_norm", eps, f"l{layer}_attn_norm", optional_bias=True
        )
    qkv = g.linear(normed, weights, f"{p}.attn.Wqkv", f"l{layer}_qkv", optional_bias=True)
    thirds = g.const(f"l{layer}_qkv_split", np.array([hidden] * 3, np.int64))
    q, k, v = g.op("Split", [qkv, thirds], f"l{layer}_qkv", n_out=3, axis=-1)
    cos, sin = rotary
    offset = "rotary_position_offset"
    heads = config.num_attention_heads
    q, k = (
        g.op(
            "RotaryEmbedding",
            [projected, offset, cos, sin],
            f"l{layer}_{part}_rotary",
            domain=MS_DOMAIN,
            num_heads=heads,
            interleaved=0,
        )[0]
        for part, projected in (("q", q), ("k", k))
    )
    inputs = [q, k, v, "", ATTENTION_MASK]
    if not is_global:
        assert window is not None
        inputs.append(window)
    (context,) = g.op(
        "MultiHeadAttention", inputs, f"l{layer}_attention", domain=MS_DOMAIN, num_heads=heads
    )
    attended = g.linear(context, weights, f"{p}.attn.Wo", f"l{layer}_attn_out", optional_bias=True)
    (x,) = g.op("Add", [x, attended], f"l{layer}_attn_residual")

    normed = g.layer_norm(
        x, weights, f"{p}.mlp_norm", eps, f"l{layer}_mlp_norm", optional_bias=True
    )
    both = g.linear(normed, weights, f"{p}.mlp.Wi", f"l{layer}_mlp_in", optional_bias=True)
    halves = g.const(f"l{layer}_mlp_split", np.array([config.intermediate_size] * 2, np.int64))
    value, gate = g.op("Split", [both, halves], f"l{layer}_mlp_halves", n_out=2, axis=-1)
    (activated,) = g.op("Gelu", [value], f"l{layer}_gelu", domain=MS_DOMAIN)
    (gated,) = g.op("Mul", [activated, gate], f"l{layer}_gated")
    out = g.linear(gated, weights, f"{p}.mlp.Wo", f"l{layer}_mlp_out", optional_bias=True)
    (x,) = g.op("Add", [x, out], f"l{layer}_mlp_residual")
    return x


def _window_bias(g: GraphBuilder, half_window: int) -> str:
    """[1, 1, sequence, sequence]: 0 where |key - query| <= half_window, else a large negative."""
    distance = key_minus_query(g)
    (far,) = g.op("Abs", [distance], "key_query_distance")
    limit = g.const("half_window", np.array(half_window, np.int64))
    (outside,) = g.op("Greater", [far, limit], "outside_window")
    (bias,) = g.op(
        "Where",
        [
            outside,
            g.const("outside_window_value", np.array(_OUTSIDE_WINDOW, np.float32)),
            g.const("inside_window_value", np.array(0.0, np.float32)),
        ],
        "window_bias_2d",
    )
    axes = g.const("window_bias_axes", np.array([0, 1], np.int64))
    (out,) = g.op("Unsqueeze", [bias, axes], "window_bias")
    return out


def _rotary_caches(
    g: GraphBuilder, name: str, theta: float, head_size: int, config: BertConfig
) -> tuple[str, str]:
    """
    cos and sin of position x inverse frequency, [positions, head_size / 2], as transformers
    computes them (in float32, from float32 inverse frequencies).
    """
    exponents = np.arange(0, head_size, 2, dtype=np.int64).astype(np.float32) / head_size
    inverse = (1.0 / (theta**exponents)).astype(np.float32)
    positions = np.arange(config.max_positions, dtype=np.float32)
    angles = np.outer(positions, inverse).astype(np.float32)
    cos = g.const(f"rotary_{name}_cos", np.cos(angles).astype(np.float32))
    sin = g.const(f"rotary_{name}_sin", np.sin(angles).astype(np.float32))
    return cos, sin
