"""
A bert-base-uncased-sized checkpoint (or all-mpnet-base-v2-sized MPNet) with random weights,
generated for benchmarks (never committed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
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
MODEL_TYPES = ("bert", "mpnet")


def write_random_model(out: Path, model_type: str = "bert", seed: int = 0) -> Path:
    """`write_random_bert`, or the same weights laid out as MPNetModel's (`model_type` mpnet)."""
    write_random_bert(out, seed)
    if model_type == "bert":
        return out
    rng = np.random.default_rng(seed + 1)
    tensors = load_file(str(out / "model.safetensors"))
    del tensors["embeddings.token_type_embeddings.weight"]
    positions = tensors["embeddings.position_embeddings.weight"]
    tensors["embeddings.position_embeddings.weight"] = np.concatenate([positions[:2], positions])
    bias = rng.normal(0.0, INIT_STD, (32, HEADS)).astype(np.float32)
    tensors["encoder.relative_attention_bias.weight"] = bias
    renamed = {}
    for name, tensor in tensors.items():
        for bert, mpnet in _MPNET_LAYER_PARTS.items():
            name = name.replace(f".{bert}.", f".{mpnet}.")
        renamed[name] = tensor
    save_file(renamed, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(MPNET_BASE, indent=2))
    return out


def write_random_bert(out: Path, seed: int = 0) -> Path:
    """
    Write config.json, model.safetensors (BertModel names) and a synthetic WordPiece tokenizer.
    """
    out.mkdir(parents=True, exist_ok=True)
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
    save_file(tensors, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(BERT_BASE, indent=2))

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    words = [f"w{n}" for n in range(v - len(specials) - 2 * len(letters))]
    vocab = specials + letters + [f"##{c}" for c in letters] + words
    tokenizer = BertWordPieceTokenizer({token: n for n, token in enumerate(vocab)}, lowercase=True)
    tokenizer.save(str(out / "tokenizer.json"))
    return out
