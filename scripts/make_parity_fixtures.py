"""Make the tiny BERT-family checkpoints and golden outputs of bert_runtime's parity tests.

Developer-side only (needs PyTorch, transformers and sentence-transformers, which the project's
resolves never contain):

    python3.11 -m venv /tmp/parity
    /tmp/parity/bin/pip install torch==2.13.0 transformers 'sentence-transformers>=6'
    /tmp/parity/bin/python scripts/make_parity_fixtures.py src/python/bert_runtime/testdata

It writes fifteen checkpoints in Hugging Face layout (config.json, model.safetensors, tokenizer
files), each well under 1 MB, and `goldens.npz` with Hugging Face's outputs for fixed texts, each
text run alone (no padding). Deterministic: a fixed seed, so rerunning it reproduces the same files
(a checkpoint added later is made after the others, so theirs do not change).

tiny-bert-rerank has one label, as cross-encoder rerankers do; its goldens are the scores of
transformers' text-classification pipeline, which applies sigmoid (not softmax) to a single logit.

tiny-st is a sentence-transformers model saved by sentence-transformers itself: a cased tokenizer
with do_lower_case, max_seq_length 12, mean pooling, two Dense layers (tanh, then identity without
bias), Normalize, and prompts with a default; its goldens are `SentenceTransformer.encode`'s.

Texts with literal pad tokens (PAD_TEXTS) get goldens of every token's hidden state from
tiny-roberta-mlm, tiny-mpnet-mlm and tiny-roberta-mlm's weights read by transformers' XLM-R classes
(tiny-xlm-roberta-mlm): those families give a pad token the padding position and do not count it.

tiny-roberta-mlm and tiny-roberta-cls are RoBERTa models (positions offset past the padding index,
one token type, RoBERTa's own heads) with a byte-level BPE tokenizer; goldens.json also keeps the
fill-mask pipeline's `token_str` for their masks (" cat", not the vocabulary's "Ġcat").

tiny-distilbert-mlm and tiny-distilbert-cls are DistilBERT models (no token types, no pooler, their
own names and heads) with the BERT fixtures' tokenizer; the masked-LM one has sinusoidal positions.

tiny-mpnet-mlm and tiny-mpnet-cls are MPNet models (RoBERTa's positions and heads, no token types,
a relative position bias in attention) with a WordPiece tokenizer set up as mpnet-base's; their
goldens include a text of all 64 positions, and `mpnet_buckets` holds transformers' relative
position buckets for distances -600..600.

tiny-electra-mlm (a generator whose 16-wide embeddings are projected to its 32-wide layers) and
tiny-electra-cls (ELECTRA's classifier: dense + gelu + out_proj on the first token) are ELECTRA
models with the BERT fixtures' tokenizer.
tiny-modernbert-mlm and tiny-modernbert-cls are ModernBERT models (pre-norm, rotary positions with
a global and a local base, GeGLU, a global layer then two sliding-window ones, no biases; the
classifier mean-pools) with the BERT fixtures' tokenizer; their goldens include a text of all 64
positions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from tokenizers import AddedToken, BertWordPieceTokenizer, ByteLevelBPETokenizer
from tokenizers import pre_tokenizers, processors
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
    BertTokenizerFast,
    DistilBertConfig,
    DistilBertForMaskedLM,
    DistilBertForSequenceClassification,
    DistilBertTokenizerFast,
    ElectraConfig,
    ElectraForMaskedLM,
    ElectraForSequenceClassification,
    ElectraTokenizerFast,
    ModernBertConfig,
    ModernBertForMaskedLM,
    ModernBertForSequenceClassification,
    MPNetConfig,
    MPNetForMaskedLM,
    MPNetForSequenceClassification,
    MPNetTokenizer,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
    RobertaTokenizerFast,
    pipeline,
)


TEXTS = [
    "hello world",
    "the quick brown fox jumps over the lazy dog",
    "",
    "a [MASK] sat on the [MASK] .",
    "Café naïve résumé, hello!",
    "the cat sat on the mat and the dog sat on the rug because it was a lazy day",
]
# Sentence pairs, for the classification head (token_type_ids 1 on the second text).
PAIRS = [
    ("a cat sat on the mat", "the dog sat on the rug"),
    ("hello world", ""),
    ("", "good day"),
    ("is it good ?", "it is not very good , it was bad"),
]
WORDS = (
    "the quick brown fox jumps over lazy dog hello world a cat sat on mat rug and because it was day "
    "cafe naive resume is good bad not very"
).split()
LABELS = {0: "negative", 1: "neutral", 2: "positive"}
# What every three-label classifier fixture passes to its config.
CLASSIFIER_LABELS = {
    "num_labels": 3,
    "id2label": LABELS,
    "label2id": {v: k for k, v in LABELS.items()},
}
TOP_K = 5
# tiny-st's texts: the others and a long mixed-case one (over its 12 tokens, and cased).
ST_TEXTS = [*TEXTS, "The Quick BROWN Fox jumps over the LAZY dog, and the cat sat on the mat"]
ST_PROMPTS = {"query": "hello ", "passage": ""}
# The RoBERTa fixtures' texts: the same, with RoBERTa's mask token.
ROBERTA_TEXTS = [text.replace("[MASK]", "<mask>") for text in TEXTS]
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
# Texts with literal pad tokens, for the families whose positions skip pads (RoBERTa, XLM-R, MPNet:
# transformers' create_position_ids_from_input_ids gives a pad padding_idx and does not count it).
PAD_TEXTS = [
    "<pad>",
    "a <pad> <pad> <pad> b",
    "<pad> hello world",
    "the cat <pad> sat on the <mask> .",
    "hello world <pad>",
]


def vocabulary() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    tokens = specials + list(".,!?'-") + letters + [f"##{c}" for c in letters] + WORDS
    # Dropping repeats ("a" is a letter and a word) keeps ids dense, as in any real vocab.txt.
    return list(dict.fromkeys(tokens))


# Every tiny model's sizes. initializer_range is larger than BERT's 0.02 so activations are not
# all near zero and differences show.
TINY_SIZES: dict[str, object] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "initializer_range": 0.2,
}


def tiny_config(**extra: object) -> BertConfig:
    return BertConfig(
        vocab_size=len(vocabulary()),
        max_position_embeddings=64,
        type_vocab_size=2,
        **TINY_SIZES,
        **extra,
    )


def mask_goldens(
    name: str, index: int, input_ids: torch.Tensor, logits: torch.Tensor, mask_id: int
) -> dict[str, np.ndarray]:
    """The masks' positions in text `index` and their top-k ids and probabilities, if any."""
    mask_positions = (input_ids == mask_id).nonzero()[:, 0]
    if not len(mask_positions):
        return {}
    scores, ids = torch.softmax(logits[mask_positions], dim=-1).topk(TOP_K, dim=-1)
    return {
        f"{name}/mask_positions/{index}": mask_positions.numpy(),
        f"{name}/top_ids/{index}": ids.numpy(),
        f"{name}/top_scores/{index}": scores.numpy(),
    }


def save_tokenizer(
    out: Path, kind: type[PreTrainedTokenizerFast] = BertTokenizerFast
) -> PreTrainedTokenizerFast:
    out.mkdir(parents=True, exist_ok=True)
    vocab = {token: i for i, token in enumerate(vocabulary())}
    # bert-base-uncased's settings: lower case, accents stripped (strip_accents=None follows
    # lowercase).
    fast = BertWordPieceTokenizer(vocab, lowercase=True, strip_accents=None)
    fast.save(str(out / "tokenizer.json"))
    tokenizer = kind(
        tokenizer_file=str(out / "tokenizer.json"), do_lower_case=True, model_max_length=64
    )
    tokenizer.save_pretrained(out)
    # Reload as a user would, so the goldens come from what was saved.
    reloaded = AutoTokenizer.from_pretrained(out)
    assert reloaded("hello world")["input_ids"] == [2, vocab["hello"], vocab["world"], 3]
    return reloaded


def pipeline_scores(
    name: str, model: BertForSequenceClassification, tokenizer: BertTokenizerFast
) -> dict[str, np.ndarray]:
    """What transformers' text-classification pipeline reports, for texts and for pairs."""
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer)
    goldens: dict[str, np.ndarray] = {}
    inputs: list[tuple[str, str | dict[str, str]]] = [
        (f"scores/{i}", text) for i, text in enumerate(TEXTS)
    ]
    inputs += [
        (f"pair_scores/{i}", {"text": first, "text_pair": second})
        for i, (first, second) in enumerate(PAIRS)
    ]
    for key, text in inputs:
        (labels,) = classify([text], top_k=None)
        goldens[f"{name}/{key}"] = np.array([labels[0]["score"]], np.float32)
    for i, (first, second) in enumerate(PAIRS):
        with torch.no_grad():
            logits = model(**tokenizer(first, second, return_tensors="pt")).logits[0]
        goldens[f"{name}/pair_logits/{i}"] = logits.numpy()
    return goldens


def sentence_transformers_model(out: Path) -> dict[str, np.ndarray]:
    """tiny-st, saved by sentence-transformers, and its `encode` for each prompt (None: default)."""
    # Imported here: only this fixture needs it.
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as st_models

    source = out.parent / ".tiny-st-transformer"
    BertModel(tiny_config()).save_pretrained(source, safe_serialization=True)
    save_tokenizer(source)
    # A cased tokenizer, so do_lower_case changes what the model sees.
    tokenizer = json.loads((source / "tokenizer.json").read_text())
    tokenizer["normalizer"]["lowercase"] = False
    (source / "tokenizer.json").write_text(json.dumps(tokenizer))
    word = st_models.Transformer(str(source), max_seq_length=12, do_lower_case=True)
    modules = [
        word,
        st_models.Pooling(32, pooling_mode="mean"),
        st_models.Dense(32, 16, activation_function=torch.nn.Tanh()),
        st_models.Dense(16, 8, bias=False, activation_function=torch.nn.Identity()),
        st_models.Normalize(),
    ]
    model = SentenceTransformer(modules=modules, prompts=ST_PROMPTS, default_prompt_name="query")
    model.save(str(out), safe_serialization=True)
    (out / "README.md").unlink()  # a generated model card
    for path in sorted(source.iterdir()):
        path.unlink()
    source.rmdir()
    model = SentenceTransformer(str(out))  # as a user loads it
    return {
        f"tiny-st/embeddings/{name or 'default'}": model.encode(
            ST_TEXTS, prompt_name=name, convert_to_numpy=True
        )
        for name in (None, "query", "passage")
    }


def save_roberta_tokenizer(out: Path) -> RobertaTokenizerFast:
    """A byte-level BPE tokenizer set up as roberta-base's is (specials, <mask> strips left)."""
    out.mkdir(parents=True, exist_ok=True)
    trainer = ByteLevelBPETokenizer()
    # Training on a fixed text is deterministic, so reruns give the same vocabulary and merges.
    trainer.train_from_iterator(
        [" ".join(WORDS)],
        vocab_size=400,
        min_frequency=1,
        special_tokens=[*ROBERTA_SPECIALS, AddedToken("<mask>", lstrip=True, special=True)],
        show_progress=False,
    )
    backend = trainer._tokenizer
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    RobertaTokenizerFast(tokenizer_object=backend, model_max_length=64).save_pretrained(out)
    reloaded = AutoTokenizer.from_pretrained(out)
    assert (reloaded.pad_token_id, reloaded.mask_token_id) == (1, 4)
    return reloaded


def roberta_config(vocab_size: int, **extra: object) -> RobertaConfig:
    """tiny_config's sizes; RoBERTa's positions start after the padding index (1), so 66."""
    return RobertaConfig(
        vocab_size=vocab_size,
        max_position_embeddings=66,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        **TINY_SIZES,
        **extra,
    )


def roberta_models(root: Path) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """
    tiny-roberta-mlm and tiny-roberta-cls, their goldens, and (for goldens.json) the fill-mask
    pipeline's token_str of each mask's top tokens.
    """
    goldens: dict[str, np.ndarray] = {}
    listing: dict[str, object] = {"roberta_texts": ROBERTA_TEXTS}
    name = "tiny-roberta-mlm"
    out = root / name
    tokenizer = save_roberta_tokenizer(out)
    mlm = RobertaForMaskedLM(roberta_config(len(tokenizer))).eval()
    mlm.save_pretrained(out, safe_serialization=True)
    for i, text in enumerate(ROBERTA_TEXTS):
        encoded = tokenizer(text, return_tensors="pt")
        goldens[f"roberta_input_ids/{i}"] = encoded["input_ids"][0].numpy()
        with torch.no_grad():
            output = mlm(**encoded, output_hidden_states=True)
        goldens[f"{name}/last_hidden_state/{i}"] = output.hidden_states[-1][0].numpy()
        masks = mask_goldens(
            name, i, encoded["input_ids"][0], output.logits[0], tokenizer.mask_token_id
        )
        goldens.update(masks)
        if masks:
            fill = pipeline("fill-mask", model=mlm, tokenizer=tokenizer, top_k=TOP_K)
            found = fill(text)
            per_mask = found if len(masks[f"{name}/mask_positions/{i}"]) > 1 else [found]
            listing[f"{name}/token_str/{i}"] = [
                [candidate["token_str"] for candidate in mask] for mask in per_mask
            ]

    goldens.update(pad_literal_goldens(name, mlm, tokenizer))

    out = root / "tiny-roberta-cls"
    tokenizer = save_roberta_tokenizer(out)
    classifier = RobertaForSequenceClassification(
        roberta_config(len(tokenizer), **CLASSIFIER_LABELS)
    ).eval()
    classifier.save_pretrained(out, safe_serialization=True)
    inputs: list[tuple[str, tuple[str, ...]]] = [
        (f"probabilities/{i}", (text,)) for i, text in enumerate(ROBERTA_TEXTS)
    ]
    inputs += [(f"pair_probabilities/{i}", pair) for i, pair in enumerate(PAIRS)]
    for key, texts in inputs:
        encoded = tokenizer(*texts, return_tensors="pt")
        with torch.no_grad():
            logits = classifier(**encoded).logits[0]
        goldens[f"tiny-roberta-cls/{key}"] = torch.softmax(logits, -1).numpy()
    return goldens, listing


def pad_literal_goldens(
    name: str, model: torch.nn.Module, tokenizer: PreTrainedTokenizerFast
) -> dict[str, np.ndarray]:
    """PAD_TEXTS' ids and last hidden states (every token), each text alone."""
    goldens: dict[str, np.ndarray] = {}
    for i, text in enumerate(PAD_TEXTS):
        encoded = tokenizer(text, return_tensors="pt", return_token_type_ids=False)
        ids = encoded["input_ids"][0]
        assert (ids == tokenizer.pad_token_id).any(), f"{text!r} has no pad token"
        assert (ids == model.config.pad_token_id).any(), "the tokenizer's pad is the config's"
        goldens[f"{name}/pad_input_ids/{i}"] = ids.numpy()
        with torch.no_grad():
            output = model(**encoded, output_hidden_states=True)
        goldens[f"{name}/pad_last_hidden_state/{i}"] = output.hidden_states[-1][0].numpy()
    return goldens


def xlm_roberta_pad_goldens(root: Path) -> dict[str, np.ndarray]:
    """
    XLM-R is RoBERTa's network under its own classes: tiny-roberta-mlm's weights read by
    transformers' XLMRobertaForMaskedLM, on PAD_TEXTS (the key is tiny-xlm-roberta-mlm).
    """
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    source = root / "tiny-roberta-mlm"
    raw = json.loads((source / "config.json").read_text())
    config = XLMRobertaConfig(**{k: v for k, v in raw.items() if k != "model_type"})
    with torch.random.fork_rng():
        model = XLMRobertaForMaskedLM.from_pretrained(source, config=config).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    return pad_literal_goldens("tiny-xlm-roberta-mlm", model, tokenizer)


def distilbert_models(root: Path) -> dict[str, np.ndarray]:
    """tiny-distilbert-mlm (sinusoidal positions) and tiny-distilbert-cls, and their goldens."""
    sizes = {
        "vocab_size": len(vocabulary()),
        "max_position_embeddings": 64,
        "dim": TINY_SIZES["hidden_size"],
        "n_layers": TINY_SIZES["num_hidden_layers"],
        "n_heads": TINY_SIZES["num_attention_heads"],
        "hidden_dim": TINY_SIZES["intermediate_size"],
        "initializer_range": TINY_SIZES["initializer_range"],
    }
    models = {
        "tiny-distilbert-mlm": DistilBertForMaskedLM(
            DistilBertConfig(**sizes, sinusoidal_pos_embds=True)
        ),
        "tiny-distilbert-cls": DistilBertForSequenceClassification(
            DistilBertConfig(**sizes, **CLASSIFIER_LABELS)
        ),
    }
    return mlm_and_classifier_goldens(root, models, DistilBertTokenizerFast)


def mlm_and_classifier_goldens(
    root: Path,
    models: dict[str, torch.nn.Module],
    kind: type[PreTrainedTokenizerFast],
) -> dict[str, np.ndarray]:
    """
    Save each model (a masked LM named *-mlm, or a classifier) with the BERT fixtures' vocabulary
    in tokenizer class `kind`; goldens: the masked LM's hidden states and masks, the classifier's
    probabilities for texts and pairs.
    """
    goldens: dict[str, np.ndarray] = {}
    for name, model in models.items():
        out = root / name
        tokenizer = save_tokenizer(out, kind)
        model.eval()
        model.save_pretrained(out, safe_serialization=True)
        for i, text in enumerate(TEXTS):
            encoded = tokenizer(text, return_tensors="pt")
            with torch.no_grad():
                output = model(**encoded, output_hidden_states=True)
            if name.endswith("-mlm"):
                goldens[f"{name}/last_hidden_state/{i}"] = output.hidden_states[-1][0].numpy()
                goldens.update(
                    mask_goldens(
                        name, i, encoded["input_ids"][0], output.logits[0], tokenizer.mask_token_id
                    )
                )
            else:
                goldens[f"{name}/probabilities/{i}"] = torch.softmax(output.logits[0], -1).numpy()
        if not name.endswith("-mlm"):
            for i, (first, second) in enumerate(PAIRS):
                with torch.no_grad():
                    logits = model(**tokenizer(first, second, return_tensors="pt")).logits[0]
                goldens[f"{name}/pair_probabilities/{i}"] = torch.softmax(logits, -1).numpy()
    return goldens

def masked_lm_goldens(
    name: str,
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerFast,
    texts: list[str],
    ids_key: str,
) -> dict[str, np.ndarray]:
    """A masked LM's ids, last hidden states and masks for `texts`, the last of all 64 positions."""
    goldens: dict[str, np.ndarray] = {}
    for i, text in enumerate(texts):
        encoded = tokenizer(text, return_tensors="pt", truncation=True, return_token_type_ids=False)
        goldens[f"{ids_key}/{i}"] = encoded["input_ids"][0].numpy()
        with torch.no_grad():
            output = model(**encoded, output_hidden_states=True)
        goldens[f"{name}/last_hidden_state/{i}"] = output.hidden_states[-1][0].numpy()
        goldens.update(
            mask_goldens(name, i, encoded["input_ids"][0], output.logits[0], tokenizer.mask_token_id)
        )
    assert len(goldens[f"{ids_key}/{len(texts) - 1}"]) == 64
    return goldens


def classifier_goldens(
    name: str, classifier: torch.nn.Module, tokenizer: PreTrainedTokenizerFast, texts: list[str]
) -> dict[str, np.ndarray]:
    """An MPNet or ModernBERT classifier's probabilities for `texts` and for the golden pairs."""
    inputs: list[tuple[str, tuple[str, ...]]] = [
        (f"probabilities/{i}", (text,)) for i, text in enumerate(texts)
    ]
    inputs += [(f"pair_probabilities/{i}", pair) for i, pair in enumerate(PAIRS)]
    goldens: dict[str, np.ndarray] = {}
    for key, pair in inputs:
        # Neither family takes token types (BERT's tokenizer would make them for ModernBERT).
        encoded = tokenizer(*pair, return_tensors="pt", return_token_type_ids=False)
        with torch.no_grad():
            logits = classifier(**encoded).logits[0]
        goldens[f"{name}/{key}"] = torch.softmax(logits, -1).numpy()
    return goldens


MPNET_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "<mask>"]
# Long enough to fill all 64 positions, so relative distances reach 63.
MPNET_LONG_TEXT = " ".join(["the quick brown fox jumps over the lazy dog"] * 8)


def save_mpnet_tokenizer(out: Path) -> PreTrainedTokenizerFast:
    """WordPiece with mpnet-base's specials: <s> </s> around texts, [UNK], <mask> strips left."""
    out.mkdir(parents=True, exist_ok=True)
    words = [t for t in vocabulary() if not (t.startswith("[") and t.endswith("]"))]
    vocab = {token: i for i, token in enumerate(MPNET_SPECIALS + words)}
    MPNetTokenizer(vocab=vocab, model_max_length=64).save_pretrained(out)
    reloaded = AutoTokenizer.from_pretrained(out)
    assert (reloaded.pad_token_id, reloaded.mask_token_id) == (1, 5)
    return reloaded


def mpnet_models(root: Path) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """tiny-mpnet-mlm and tiny-mpnet-cls, their goldens, and the long text (for goldens.json)."""
    from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

    distances = torch.arange(-600, 601)
    goldens = {"mpnet_buckets": MPNetEncoder.relative_position_bucket(distances).numpy()}
    sizes = {"max_position_embeddings": 66, "pad_token_id": 1, **TINY_SIZES}
    texts = [*ROBERTA_TEXTS, MPNET_LONG_TEXT]
    name = "tiny-mpnet-mlm"
    tokenizer = save_mpnet_tokenizer(root / name)
    mlm = MPNetForMaskedLM(MPNetConfig(vocab_size=len(tokenizer), **sizes)).eval()
    mlm.save_pretrained(root / name, safe_serialization=True)
    goldens.update(masked_lm_goldens(name, mlm, tokenizer, texts, "mpnet_input_ids"))
    goldens.update(pad_literal_goldens(name, mlm, tokenizer))

    name = "tiny-mpnet-cls"
    tokenizer = save_mpnet_tokenizer(root / name)
    classifier = MPNetForSequenceClassification(
        MPNetConfig(vocab_size=len(tokenizer), **CLASSIFIER_LABELS, **sizes)
    ).eval()
    classifier.save_pretrained(root / name, safe_serialization=True)
    goldens.update(classifier_goldens(name, classifier, tokenizer, ROBERTA_TEXTS))
    return goldens, {"mpnet_long_text": MPNET_LONG_TEXT}


def electra_models(root: Path) -> dict[str, np.ndarray]:
    """tiny-electra-mlm (embeddings projected 16 -> 32) and tiny-electra-cls, and their goldens."""
    models = {
        "tiny-electra-mlm": ElectraForMaskedLM(tiny_electra_config(embedding_size=16)),
        "tiny-electra-cls": ElectraForSequenceClassification(
            tiny_electra_config(embedding_size=32, **CLASSIFIER_LABELS)
        ),
    }
    return mlm_and_classifier_goldens(root, models, ElectraTokenizerFast)

def tiny_electra_config(**extra: object) -> ElectraConfig:
    return ElectraConfig(
        vocab_size=len(vocabulary()), max_position_embeddings=64, **TINY_SIZES, **extra
    )


# 64 tokens with [CLS] and [SEP]: rotary positions up to 63, and most pairs outside the window.
MODERNBERT_LONG_TEXT = " ".join(
    ["the quick brown fox jumps over the lazy dog"] * 6 + ["the quick brown fox jumps a [MASK] ."]
)


def modernbert_config(**extra: object) -> ModernBertConfig:
    """
    Three layers: the first global, the others sliding (window 8: 4 tokens each side), as
    ModernBERT's global_attn_every_n_layers=3; no biases, as answerdotai/ModernBERT-base.
    """
    ids = {token: i for i, token in enumerate(vocabulary())}
    return ModernBertConfig(
        vocab_size=len(ids),
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=64,
        local_attention=8,
        global_attn_every_n_layers=3,
        global_rope_theta=160000.0,
        local_rope_theta=10000.0,
        initializer_range=0.2,
        pad_token_id=ids["[PAD]"],
        cls_token_id=ids["[CLS]"],
        sep_token_id=ids["[SEP]"],
        bos_token_id=ids["[CLS]"],
        eos_token_id=ids["[SEP]"],
        attn_implementation="eager",
        **extra,
    )


def modernbert_models(root: Path) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """tiny-modernbert-mlm and tiny-modernbert-cls (mean pooling), their goldens, the long text."""
    goldens: dict[str, np.ndarray] = {}
    texts = [*TEXTS, MODERNBERT_LONG_TEXT]
    name = "tiny-modernbert-mlm"
    tokenizer = save_tokenizer(root / name)
    mlm = ModernBertForMaskedLM(modernbert_config()).eval()
    mlm.save_pretrained(root / name, safe_serialization=True)
    goldens.update(masked_lm_goldens(name, mlm, tokenizer, texts, "modernbert_input_ids"))

    name = "tiny-modernbert-cls"
    tokenizer = save_tokenizer(root / name)
    classifier = ModernBertForSequenceClassification(
        modernbert_config(classifier_pooling="mean", **CLASSIFIER_LABELS)
    ).eval()
    classifier.save_pretrained(root / name, safe_serialization=True)
    goldens.update(classifier_goldens(name, classifier, tokenizer, TEXTS))
    return goldens, {"modernbert_long_text": MODERNBERT_LONG_TEXT}


def main(root: Path) -> None:
    torch.manual_seed(1234)
    models = {
        "tiny-bert": BertModel(tiny_config()),
        "tiny-bert-mlm": BertForMaskedLM(tiny_config()),
        "tiny-bert-cls": BertForSequenceClassification(
            tiny_config(**CLASSIFIER_LABELS)
        ),
        # Made last: the models above keep the weights they had before it was added.
        "tiny-bert-rerank": BertForSequenceClassification(tiny_config(num_labels=1)),
    }
    goldens: dict[str, np.ndarray] = {}
    for name, model in models.items():
        out = root / name
        tokenizer = save_tokenizer(out)
        model.eval()
        model.save_pretrained(out, safe_serialization=True)
        for i, text in enumerate(TEXTS):
            encoded = tokenizer(text, return_tensors="pt")
            goldens[f"input_ids/{i}"] = encoded["input_ids"][0].numpy()
            with torch.no_grad():
                output = model(**encoded)
            if name == "tiny-bert":
                hidden = output.last_hidden_state[0].numpy()
                goldens[f"{name}/last_hidden_state/{i}"] = hidden
                goldens[f"{name}/pooler_output/{i}"] = output.pooler_output[0].numpy()
            elif name == "tiny-bert-mlm":
                goldens.update(
                    mask_goldens(
                        name, i, encoded["input_ids"][0], output.logits[0], tokenizer.mask_token_id
                    )
                )
            elif name == "tiny-bert-cls":
                goldens[f"{name}/probabilities/{i}"] = torch.softmax(output.logits[0], -1).numpy()
            else:
                goldens[f"{name}/logits/{i}"] = output.logits[0].numpy()
        if name == "tiny-bert-cls":
            for i, (first, second) in enumerate(PAIRS):
                encoded = tokenizer(first, second, return_tensors="pt")
                goldens[f"pair_input_ids/{i}"] = encoded["input_ids"][0].numpy()
                goldens[f"pair_token_type_ids/{i}"] = encoded["token_type_ids"][0].numpy()
                with torch.no_grad():
                    logits = model(**encoded).logits[0]
                goldens[f"{name}/pair_probabilities/{i}"] = torch.softmax(logits, -1).numpy()
        if name == "tiny-bert-rerank":
            goldens.update(pipeline_scores(name, model, tokenizer))
    goldens.update(sentence_transformers_model(root / "tiny-st"))
    roberta_goldens, roberta_listing = roberta_models(root)
    goldens.update(roberta_goldens)
    goldens.update(distilbert_models(root))
    mpnet_goldens, mpnet_listing = mpnet_models(root)
    goldens.update(mpnet_goldens)
    goldens.update(electra_models(root))
    modernbert_goldens, modernbert_listing = modernbert_models(root)
    goldens.update(modernbert_goldens)
    goldens.update(xlm_roberta_pad_goldens(root))
    np.savez_compressed(root / "goldens.npz", **goldens)
    listing = {
        "texts": TEXTS,
        "pairs": [list(pair) for pair in PAIRS],
        "top_k": TOP_K,
        "st_texts": ST_TEXTS,
        "pad_texts": PAD_TEXTS,
        **roberta_listing,
        **mpnet_listing,
        **modernbert_listing,
    }
    (root / "goldens.json").write_text(json.dumps(listing, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
