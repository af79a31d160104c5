"""Tokenizer files of a prepared model: always a fast-tokenizer `tokenizer.json`."""

from __future__ import annotations

import shutil
from pathlib import Path

from tokenizers import Tokenizer
from tokenizers.implementations.bert_wordpiece import BertWordPieceTokenizer

from bert_runtime.preparation import sources


def write_tokenizer(files: sources.SourceFiles, out: Path) -> None:
    """Copy tokenizer.json, or build it from vocab.txt for checkpoints that ship only that."""
    settings = {}
    config_path = files.path("tokenizer_config.json")
    if config_path.is_file():
        settings = sources.read_json(config_path)
        shutil.copyfile(config_path, out / "tokenizer_config.json")
    if files.path("tokenizer.json").is_file():
        shutil.copyfile(files.path("tokenizer.json"), out / "tokenizer.json")
    else:
        lowercase = bool(settings.get("do_lower_case", True))
        built = BertWordPieceTokenizer(str(files.path("vocab.txt")), lowercase=lowercase)
        built.save(str(out / "tokenizer.json"))
    # Fail here, not at serving time, if the file is unreadable.
    Tokenizer.from_file(str(out / "tokenizer.json"))
