"""
Fast tokenizers built from the vocabulary files of checkpoints saved before tokenizer.json existed:
BERT's and MPNet's vocab.txt, RoBERTa's vocab.json + merges.txt.

Each is assembled the way transformers' own tokenizer class for that family assembles it (model,
normalizer, pre-tokenizer, template, special tokens), so the ids are the ones the checkpoint was
trained and evaluated with. Settings come from tokenizer_config.json and special_tokens_map.json.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE, WordPiece

from bert_runtime.errors import ModelSourceError


@dataclass(frozen=True)
class Special:
    """A special token's text and whether it takes in the whitespace beside it."""

    content: str
    lstrip: bool = False
    rstrip: bool = False


# The families' defaults: transformers' tokenizer classes give RoBERTa's and MPNet's mask token
# lstrip (it takes the space before it, as in pre-training); BERT's tokens take no whitespace.
_BERT_SPECIALS = {
    "cls_token": Special("[CLS]"),
    "sep_token": Special("[SEP]"),
    "pad_token": Special("[PAD]"),
    "unk_token": Special("[UNK]"),
    "mask_token": Special("[MASK]"),
}
_ROBERTA_SPECIALS = {
    "cls_token": Special("<s>"),
    "sep_token": Special("</s>"),
    "pad_token": Special("<pad>"),
    "unk_token": Special("<unk>"),
    "mask_token": Special("<mask>", lstrip=True),
}
_MPNET_SPECIALS = {**_ROBERTA_SPECIALS, "unk_token": Special("[UNK]")}


@dataclass(frozen=True)
class TokenizerSettings:
    """What tokenizer_config.json and special_tokens_map.json say (either may be empty)."""

    config: Mapping[str, object]
    special_tokens_map: Mapping[str, object]

    def flag(self, key: str, default: bool) -> bool:
        value = self.config.get(key)
        return value if isinstance(value, bool) else default

    def strip_accents(self) -> bool | None:
        """BERT's strip_accents: None (the default) strips them exactly when lowercasing."""
        value = self.config.get("strip_accents")
        return value if isinstance(value, bool) else None

    def specials(self, defaults: Mapping[str, Special]) -> dict[str, Special]:
        """
        Each role's token: its text from tokenizer_config.json, else special_tokens_map.json, else
        the family's; its lstrip/rstrip from the saved added-token entry for that text, else the
        object that named it, else the family's default.
        """
        found = {}
        for role, default in defaults.items():
            named = self.config.get(role) or self.special_tokens_map.get(role)
            content = named.get("content") if isinstance(named, dict) else named
            if not isinstance(content, str):
                content, named = default.content, None
            saved = self._added_token(content)
            flags = saved or (named if isinstance(named, dict) else {})
            fallback = default if content == default.content else Special(content)
            found[role] = Special(
                content,
                lstrip=bool(flags.get("lstrip", fallback.lstrip)),
                rstrip=bool(flags.get("rstrip", fallback.rstrip)),
            )
        return found

    def _added_token(self, content: str) -> Mapping[str, object] | None:
        """transformers >= 4.34 saves every added token, flags included, in added_tokens_decoder."""
        saved = self.config.get("added_tokens_decoder")
        if not isinstance(saved, dict):
            return None
        for entry in saved.values():
            if isinstance(entry, dict) and entry.get("content") == content:
                return entry
        return None


def bert_wordpiece(files: Mapping[str, Path], settings: TokenizerSettings) -> Tokenizer:
    """BERT's (and DistilBERT's, ELECTRA's) tokenizer: [CLS] A [SEP] B [SEP], token types 0/1."""
    specials = settings.specials(_BERT_SPECIALS)
    tokenizer, ids = _wordpiece(files["vocab.txt"], settings, specials)
    cls, sep = specials["cls_token"].content, specials["sep_token"].content
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, ids[cls]), (sep, ids[sep])],
    )
    return tokenizer


def mpnet_wordpiece(files: Mapping[str, Path], settings: TokenizerSettings) -> Tokenizer:
    """MPNet's tokenizer: BERT's WordPiece and normalizer, RoBERTa's <s> A </s></s> B </s>."""
    specials = settings.specials(_MPNET_SPECIALS)
    tokenizer, ids = _wordpiece(files["vocab.txt"], settings, specials)
    _frame_as_roberta(tokenizer, specials, ids, trim_offsets=True, add_prefix_space=False)
    return tokenizer


def roberta_bpe(files: Mapping[str, Path], settings: TokenizerSettings) -> Tokenizer:
    """RoBERTa's tokenizer: byte-level BPE, <s> A </s></s> B </s>."""
    try:
        vocab, merges = BPE.read_file(str(files["vocab.json"]), str(files["merges.txt"]))
    except Exception as error:  # tokenizers raises plain Exception for unreadable files
        raise ModelSourceError(f"cannot read vocab.json + merges.txt: {error}") from error
    tokenizer = Tokenizer(
        BPE(
            vocab,
            merges,
            dropout=None,
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
        )
    )
    add_prefix_space = settings.flag("add_prefix_space", False)
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    tokenizer.decoder = decoders.ByteLevel()
    specials = settings.specials(_ROBERTA_SPECIALS)
    ids = _add_specials(tokenizer, specials, vocab, "vocab.json")
    _frame_as_roberta(
        tokenizer,
        specials,
        ids,
        trim_offsets=settings.flag("trim_offsets", True),
        add_prefix_space=add_prefix_space,
    )
    return tokenizer


Builder = Callable[[Mapping[str, Path], TokenizerSettings], Tokenizer]


@dataclass(frozen=True)
class VocabularyFormat:
    """The files a family's tokenizer can be built from, and how."""

    files: tuple[str, ...]
    build: Builder


# The formats whose files say everything (each family names its own, families/): XLM-R's
# sentencepiece.bpe.model, for one, would need the sentencepiece library to read, and is refused.
WORDPIECE = VocabularyFormat(("vocab.txt",), bert_wordpiece)
MPNET_WORDPIECE = VocabularyFormat(("vocab.txt",), mpnet_wordpiece)
ROBERTA_BPE = VocabularyFormat(("vocab.json", "merges.txt"), roberta_bpe)


def _wordpiece(
    vocab_path: Path, settings: TokenizerSettings, specials: Mapping[str, Special]
) -> tuple[Tokenizer, dict[str, int]]:
    """WordPiece with BERT's normalizer and pre-tokenizer, as both BERT and MPNet use them."""
    try:
        vocab = WordPiece.read_file(str(vocab_path))
    except Exception as error:  # tokenizers raises plain Exception for unreadable files
        raise ModelSourceError(f"cannot read vocab.txt: {error}") from error
    tokenizer = Tokenizer(WordPiece(vocab, unk_token=specials["unk_token"].content))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=settings.flag("tokenize_chinese_chars", True),
        strip_accents=settings.strip_accents(),
        lowercase=settings.flag("do_lower_case", True),
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer, _add_specials(tokenizer, specials, vocab, "vocab.txt")


def _add_specials(
    tokenizer: Tokenizer, specials: Mapping[str, Special], vocab: Mapping[str, int], file: str
) -> dict[str, int]:
    """
    Make each special token match whole (never split, never normalized) at its vocabulary id.
    One outside the vocabulary would get an id past the model's embedding table: refused.
    """
    for role, special in specials.items():
        if special.content not in vocab:
            raise ModelSourceError(f"{file} has no entry for the {role} {special.content!r}")
    tokenizer.add_special_tokens(
        [
            AddedToken(s.content, lstrip=s.lstrip, rstrip=s.rstrip, normalized=False, special=True)
            for s in specials.values()
        ]
    )
    return {s.content: vocab[s.content] for s in specials.values()}


def _frame_as_roberta(
    tokenizer: Tokenizer,
    specials: Mapping[str, Special],
    ids: Mapping[str, int],
    *,
    trim_offsets: bool,
    add_prefix_space: bool,
) -> None:
    cls, sep = specials["cls_token"].content, specials["sep_token"].content
    tokenizer.post_processor = processors.RobertaProcessing(
        (sep, ids[sep]),
        (cls, ids[cls]),
        trim_offsets=trim_offsets,
        add_prefix_space=add_prefix_space,
    )
