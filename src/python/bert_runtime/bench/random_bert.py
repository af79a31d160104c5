"""
A bert-base-uncased-sized checkpoint (or all-mpnet-base-v2-sized MPNet, or ModernBERT-base-sized
ModernBERT) with random weights, generated for benchmarks (never committed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers.implementations.bert_wordpiece import BertWordPieceTokenizer

# bert-base-uncased's shape.
VOCAB, HIDDEN, LAYERS, HEADS, INTERMEDIATE, POSITIONS, INIT_STD = (
    30522,
    768,
    12,
    12,
    3072,
    512,
    0.02,
)
BERT_BASE: dict[str, object] = {
    "architectures": ["BertModel"],
    "model_type": "bert",
    "vocab_size": VOCAB,
    "hidden_size": HIDDEN,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": HEADS,
    "intermediate_size": INTERMEDIATE,
    "max_position_embeddings": POSITIONS,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "hidden_act": "gelu",
    "initializer_range": INIT_STD,
    "pad_token_id": 0,
}


# all-mpnet-base-v2's network at bert-base's size: 514 position rows (counted from the padding
# index + 1), no token types, a 32-bucket relative position bias (vocabulary: bert-base's size).
MPNET_BASE: dict[str, object] = {
    **{key: value for key, value in BERT_BASE.items() if key != "type_vocab_size"},
    "architectures": ["MPNetModel"],
    "model_type": "mpnet",
    "max_position_embeddings": POSITIONS + 2,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "relative_attention_num_buckets": 32,
}
# MPNet's names for the BERT layer parts that differ.
_MPNET_LAYER_PARTS = {
    "attention.self.query": "attention.attn.q",
    "attention.self.key": "attention.attn.k",
    "attention.self.value": "attention.attn.v",
    "attention.output.dense": "attention.attn.o",
    "attention.output.LayerNorm": "attention.LayerNorm",
}
# answerdotai/ModernBERT-base's network (vocabulary: bert-base's size): 22 pre-norm layers with
# rotary positions, every third global and the others windowed (128), a gated GELU 1152 wide, no
# biases.
MODERNBERT_LAYERS, MODERNBERT_INTERMEDIATE = 22, 1152
MODERNBERT_BASE: dict[str, object] = {
    "architectures": ["ModernBertModel"],
    "model_type": "modernbert",
    "vocab_size": VOCAB,
    "hidden_size": HIDDEN,
    "num_hidden_layers": MODERNBERT_LAYERS,
    "num_attention_heads": HEADS,
    "intermediate_size": MODERNBERT_INTERMEDIATE,
    "max_position_embeddings": 8192,
    "local_attention": 128,
    "global_attn_every_n_layers": 3,
    "global_rope_theta": 160000.0,
    "local_rope_theta": 10000.0,
    "norm_eps": 1e-5,
    "norm_bias": False,
    "attention_bias": False,
    "mlp_bias": False,
    "hidden_activation": "gelu",
    "initializer_range": INIT_STD,
    "pad_token_id": 0,
    "cls_token_id": 2,
    "sep_token_id": 3,
    "bos_token_id": 2,
    "eos_token_id": 3,
}
MODEL_TYPES = ("bert", "mpnet", "modernbert")


def write_random_model(out: Path, model_type: str = "bert", seed: int = 0) -> Path:
    """
    Write config.json, model.safetensors and a synthetic WordPiece tokenizer: bert-base's random
    weights, laid out as BertModel's or (`model_type` mpnet) as MPNetModel's; or (modernbert)
    ModernBERT-base's.
    """
    out.mkdir(parents=True, exist_ok=True)
    if model_type == "modernbert":
        tensors, config = _modernbert_tensors(seed), MODERNBERT_BASE
    else:
        tensors, config = _bert_tensors(seed), BERT_BASE
    if model_type == "mpnet":
        tensors, config = _as_mpnet(tensors, seed), MPNET_BASE
    save_file(tensors, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(config, indent=2))
    _write_tokenizer(out)
    return out


def write_random_bert(out: Path, seed: int = 0) -> Path:
    """bert-base-uncased's shape with random weights (BertModel names)."""
    return write_random_model(out, "bert", seed)


def _bert_tensors(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    h, i, v = HIDDEN, INTERMEDIATE, VOCAB

    def normal(*shape: int) -> np.ndarray:
        return np.asarray(rng.normal(0.0, INIT_STD, shape), dtype=np.float32)

    tensors = {
        "embeddings.word_embeddings.weight": normal(v, h),
        "embeddings.position_embeddings.weight": normal(POSITIONS, h),
        "embeddings.token_type_embeddings.weight": normal(2, h),
        "embeddings.LayerNorm.weight": np.ones(h, np.float32),
        "embeddings.LayerNorm.bias": np.zeros(h, np.float32),
        "pooler.dense.weight": normal(h, h),
        "pooler.dense.bias": np.zeros(h, np.float32),
    }
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}"
        for name, (rows, cols) in {
            "attention.self.query": (h, h),
            "attention.self.key": (h, h),
            "attention.self.value": (h, h),
            "attention.output.dense": (h, h),
            "intermediate.dense": (i, h),
            "output.dense": (h, i),
        }.items():
            tensors[f"{p}.{name}.weight"] = normal(rows, cols)
            tensors[f"{p}.{name}.bias"] = normal(rows)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            tensors[f"{p}.{norm}.weight"] = np.ones(h, np.float32)
            tensors[f"{p}.{norm}.bias"] = np.zeros(h, np.float32)
    return tensors


def _modernbert_tensors(seed: int) -> dict[str, np.ndarray]:
    """ModernBertModel's tensors: the first layer has no attention norm, nothing has a bias."""
    rng = np.random.default_rng(seed)
    h, i = HIDDEN, MODERNBERT_INTERMEDIATE

    def normal(*shape: int) -> np.ndarray:
        return np.asarray(rng.normal(0.0, INIT_STD, shape), dtype=np.float32)

    ones = np.ones(h, np.float32)
    tensors = {
        "embeddings.tok_embeddings.weight": normal(VOCAB, h),
        "embeddings.norm.weight": ones,
        "final_norm.weight": ones,
    }
    for layer in range(MODERNBERT_LAYERS):
        p = f"layers.{layer}"
        tensors[f"{p}.attn.Wqkv.weight"] = normal(3 * h, h)
        tensors[f"{p}.attn.Wo.weight"] = normal(h, h)
        tensors[f"{p}.mlp.Wi.weight"] = normal(2 * i, h)
        tensors[f"{p}.mlp.Wo.weight"] = normal(h, i)
        tensors[f"{p}.mlp_norm.weight"] = ones
        if layer:
            tensors[f"{p}.attn_norm.weight"] = ones
    return tensors


def _as_mpnet(tensors: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """BERT's tensors under MPNet's names, without token types, plus a random position bias."""
    rng = np.random.default_rng(seed + 1)
    mpnet = {}
    for name, tensor in tensors.items():
        if name == "embeddings.token_type_embeddings.weight":
            continue
        if name == "embeddings.position_embeddings.weight":
            # Two rows before the first token's (the padding index + 1 = 2).
            tensor = np.concatenate([tensor[:2], tensor])
        for bert, own in _MPNET_LAYER_PARTS.items():
            name = name.replace(f".{bert}.", f".{own}.")
        mpnet[name] = tensor
    bias = rng.normal(0.0, INIT_STD, (32, HEADS)).astype(np.float32)
    mpnet["encoder.relative_attention_bias.weight"] = bias
    return mpnet


def _write_tokenizer(out: Path) -> None:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    words = [f"w{n}" for n in range(VOCAB - len(specials) - 2 * len(letters))]
    vocab = specials + letters + [f"##{c}" for c in letters] + words
    tokenizer = BertWordPieceTokenizer({token: n for n, token in enumerate(vocab)}, lowercase=True)
    tokenizer.save(str(out / "tokenizer.json"))
