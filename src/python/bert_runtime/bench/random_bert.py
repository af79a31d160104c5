"""
A bert-base-uncased-sized checkpoint with random weights, generated for benchmarks (never
committed).
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
