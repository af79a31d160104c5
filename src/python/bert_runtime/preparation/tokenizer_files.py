"""Tokenizer files of a prepared model: always a fast-tokenizer `tokenizer.json`."""

from __future__ import annotations

import shutil
from pathlib import Path

from tokenizers import Tokenizer, normalizers
from tokenizers.implementations.bert_wordpiece import BertWordPieceTokenizer

from bert_runtime.errors import ModelSourceError
from bert_runtime.manifest import TOKENIZER_CONFIG_NAME, TOKENIZER_NAME, read_json
from bert_runtime.preparation import sources

# Model types whose vocab.txt is BERT's WordPiece with BERT's specials ([CLS] ... [SEP]), so a
# tokenizer.json can be built from it alone; MPNet's vocab.txt has other specials and templates.
_BERT_VOCABULARIES = ("bert", "distilbert", "electra")


def write_tokenizer(
    files: sources.SourceFiles, out: Path, *, model_type: str, lowercase_input: bool = False
) -> None:
    """
    Copy tokenizer.json, or build it from vocab.txt for BERT-tokenized checkpoints that ship only
    that (another model's vocab.txt would get BERT's specials: refused).
    `lowercase_input` (sentence-transformers' do_lower_case) puts lowercasing in front of the
    tokenizer's own normalizer, so serving needs no setting of its own for it.
    """
    settings = {}
    config_path = files.path(TOKENIZER_CONFIG_NAME)
    if config_path.is_file():
        settings = read_json(config_path)
        shutil.copyfile(config_path, out / TOKENIZER_CONFIG_NAME)
    if files.path(TOKENIZER_NAME).is_file():
        shutil.copyfile(files.path(TOKENIZER_NAME), out / TOKENIZER_NAME)
    elif model_type not in _BERT_VOCABULARIES:
        raise ModelSourceError(
            f"model source {files.source!r} has vocab.txt but no tokenizer.json: model type "
            f"{model_type!r} needs tokenizer.json (vocab.txt alone is read only for model types "
            f"{', '.join(_BERT_VOCABULARIES)})"
        )
    else:
        lowercase = bool(settings.get("do_lower_case", True))
        built = BertWordPieceTokenizer(str(files.path("vocab.txt")), lowercase=lowercase)
        built.save(str(out / TOKENIZER_NAME))
    # Fail here, not at serving time, if the file is unreadable.
    tokenizer = Tokenizer.from_file(str(out / TOKENIZER_NAME))
    if lowercase_input:
        steps = [normalizers.Lowercase()]
        if tokenizer.normalizer is not None:
            steps.append(tokenizer.normalizer)
        tokenizer.normalizer = normalizers.Sequence(steps)
        tokenizer.save(str(out / TOKENIZER_NAME))
