"""Reading the files a checkpoint and a prepared directory hold: JSON, tokenizer.json, digests.

Both wings read them (preparation the source checkpoint, serving the prepared directory), so they
live beside the manifest, not in it: manifest.py states only what a prepared directory holds.
Every reader names the file it could not read in a ModelSourceError.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tokenizers import Tokenizer

from bert_runtime.errors import ModelSourceError


def read_tokenizer(path: Path) -> Tokenizer:
    """A fast tokenizer's tokenizer.json; one the tokenizers library cannot read is named."""
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # the tokenizers library raises plain Exception
        raise ModelSourceError(f"{path} is not a readable tokenizer.json: {error}") from error


def parse_json(path: Path) -> object:
    """A JSON file's value; a file that is not JSON is named in a ModelSourceError."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelSourceError(f"{path} is not valid JSON: {error}") from error


def read_json(path: Path) -> dict[str, object]:
    """A JSON file that must hold an object (config.json, tokenizer_config.json, ...)."""
    loaded = parse_json(path)
    if not isinstance(loaded, dict):
        raise ModelSourceError(f"{path} is not a JSON object")
    return loaded


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
