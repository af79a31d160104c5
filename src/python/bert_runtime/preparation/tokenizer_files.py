"""Tokenizer files of a prepared model: always a fast-tokenizer `tokenizer.json`."""

from __future__ import annotations

import shutil
from pathlib import Path

from tokenizers import Tokenizer, normalizers

from bert_runtime.errors import ModelSourceError
from bert_runtime.files import read_json, read_tokenizer
from bert_runtime.manifest import TOKENIZER_CONFIG_NAME, TOKENIZER_NAME
from bert_runtime.preparation import sources
from bert_runtime.preparation.families.registry import FAMILIES
from bert_runtime.preparation.vocabulary_tokenizers import TokenizerSettings


def write_tokenizer(
    files: sources.SourceFiles, out: Path, *, model_type: str, lowercase_input: bool = False
) -> None:
    """
    Copy tokenizer.json, or build it from the family's older vocabulary files when the checkpoint
    ships only those (another family's files would be read with the wrong rules: refused).
    `lowercase_input` (sentence-transformers' do_lower_case) puts lowercasing in front of the
    tokenizer's own normalizer, so serving needs no setting of its own for it.
    """
    settings = _settings(files)
    if files.path(TOKENIZER_CONFIG_NAME).is_file():
        shutil.copyfile(files.path(TOKENIZER_CONFIG_NAME), out / TOKENIZER_CONFIG_NAME)
    if files.path(TOKENIZER_NAME).is_file():
        # Read first: a damaged file fails here, named as the source's, not at serving time.
        tokenizer = read_tokenizer(files.path(TOKENIZER_NAME))
        shutil.copyfile(files.path(TOKENIZER_NAME), out / TOKENIZER_NAME)
    else:
        tokenizer = _build_from_vocabulary(files, model_type, settings)
        tokenizer.save(str(out / TOKENIZER_NAME))
    if lowercase_input:
        steps = [normalizers.Lowercase()]
        if tokenizer.normalizer is not None:
            steps.append(tokenizer.normalizer)
        tokenizer.normalizer = normalizers.Sequence(steps)
        tokenizer.save(str(out / TOKENIZER_NAME))


def _settings(files: sources.SourceFiles) -> TokenizerSettings:
    named = [files.path(TOKENIZER_CONFIG_NAME), files.path(sources.SPECIAL_TOKENS_MAP_FILE)]
    config, special_tokens_map = (read_json(path) if path.is_file() else {} for path in named)
    return TokenizerSettings(config=config, special_tokens_map=special_tokens_map)


def _build_from_vocabulary(
    files: sources.SourceFiles, model_type: str, settings: TokenizerSettings
) -> Tokenizer:
    present = [name for name in sources.TOKENIZER_FILES if files.path(name).is_file()]
    family = FAMILIES.get(model_type)
    vocabulary = family.vocabulary if family else None
    if vocabulary is None or not all(files.path(name).is_file() for name in vocabulary.files):
        readable = f" or {' + '.join(vocabulary.files)}" if vocabulary else ""
        raise ModelSourceError(
            f"model source {files.source!r} has {' + '.join(present)} but no tokenizer.json: "
            f"model type {model_type!r} needs tokenizer.json{readable}"
        )
    return vocabulary.build({name: files.path(name) for name in vocabulary.files}, settings)
