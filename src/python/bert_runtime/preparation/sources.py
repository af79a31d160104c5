"""Model sources: a local directory in Hugging Face layout, or a Hugging Face Hub repo id.

Hub downloads go through `huggingface_hub`, so its conventions hold: HF_ENDPOINT (a mirror),
HF_HUB_OFFLINE, HF_TOKEN, HF_HOME / HF_HUB_CACHE and its progress bars.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bert_runtime.errors import MissingModelFilesError, ModelSourceError
from bert_runtime.manifest import TOKENIZER_CONFIG_NAME, TOKENIZER_NAME

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# PyTorch's pickled weights: never loaded (unpickling runs code), only noticed to explain an error.
PICKLED_WEIGHTS_FILE = "pytorch_model.bin"
# A tokenizer is made from tokenizer.json (the fast tokenizer: preferred), or from one of the
# older vocabularies: vocab.txt (WordPiece), or vocab.json + merges.txt (byte-level BPE).
_VOCABULARY_FILES = ("vocab.txt", "vocab.json", "merges.txt")
TOKENIZER_FILES = (TOKENIZER_NAME, *_VOCABULARY_FILES)
_TOKENIZER_CHOICES = ((TOKENIZER_NAME,), ("vocab.txt",), ("vocab.json", "merges.txt"))
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
OPTIONAL_FILES = (TOKENIZER_CONFIG_NAME, SPECIAL_TOKENS_MAP_FILE)
# A sentence-transformers model's module list, pooling settings and input length (its defaults).
MODULES_FILE = "modules.json"
POOLING_CONFIG_FILE = "1_Pooling/config.json"
SENTENCE_CONFIG_FILE = "sentence_bert_config.json"
# Its prompts ("query: ", ...) and the one applied by default.
ST_CONFIG_FILE = "config_sentence_transformers.json"
# Its Dense projections after pooling, one folder each ("2_Dense"): settings and weights.
DENSE_FILES = ("config.json", "model.safetensors")
_DENSE_PATTERNS = [f"*_Dense/{name}" for name in DENSE_FILES]
_ALL_FILES = [
    CONFIG_FILE,
    WEIGHTS_FILE,
    *TOKENIZER_FILES,
    *OPTIONAL_FILES,
    MODULES_FILE,
    POOLING_CONFIG_FILE,
    SENTENCE_CONFIG_FILE,
    ST_CONFIG_FILE,
]
# A hub download skips the older vocabulary files unless the repo has no tokenizer.json (they are
# about 1.4 MB for roberta-base, and preparation reads them only then).
_FIRST_DOWNLOAD = [name for name in _ALL_FILES if name not in _VOCABULARY_FILES]


@dataclass(frozen=True)
class SourceFiles:
    """The files preparation reads, wherever they came from."""

    source: str
    root: Path
    # The hub commit sha, or None for a local directory.
    revision: str | None

    def path(self, name: str) -> Path:
        return self.root / name

    def present(self) -> list[str]:
        fixed = [name for name in _ALL_FILES if (self.root / name).is_file()]
        dense = sorted(
            str(path.relative_to(self.root))
            for pattern in _DENSE_PATTERNS
            for path in self.root.glob(pattern)
            if path.is_file()
        )
        return fixed + dense


def parse_repo_id(source: str) -> tuple[str, str | None]:
    """Split `org/name@revision` into repo id and revision."""
    repo_id, _, revision = source.partition("@")
    return repo_id, revision or None


def fetch(source: str, cache_dir: Path | None = None) -> SourceFiles:
    """Resolve `source` to local files, downloading from the hub when it is not a directory."""
    local = Path(source).expanduser()
    if local.is_dir():
        files = SourceFiles(source=str(local.resolve()), root=local.resolve(), revision=None)
    elif source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise ModelSourceError(f"model directory {source!r} does not exist")
    else:
        files = _download(source, cache_dir)
    check_complete(files)
    return files


def pickled_weights_note(weights_name: str) -> str:
    """How a missing safetensors file is named when pickled weights sit in its place."""
    return (
        f"{weights_name} (only {PICKLED_WEIGHTS_FILE} found: pickled PyTorch weights are not "
        "loaded; convert them to safetensors)"
    )


def check_complete(files: SourceFiles) -> None:
    """Raise MissingModelFilesError naming every file preparation needs but the source lacks."""
    present = set(files.present())
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if name not in present]
    if not any(present.issuperset(choice) for choice in _TOKENIZER_CHOICES):
        choices = [" + ".join(choice) for choice in _TOKENIZER_CHOICES]
        missing.append(f"{', '.join(choices[:-1])} or {choices[-1]}")
    if WEIGHTS_FILE in missing and (files.root / PICKLED_WEIGHTS_FILE).is_file():
        missing[missing.index(WEIGHTS_FILE)] = pickled_weights_note(WEIGHTS_FILE)
    elif WEIGHTS_FILE in missing and files.revision is not None:
        # Pickled weights are not downloaded, so a hub repo cannot be told apart here.
        repo_id, _ = parse_repo_id(files.source)
        missing[missing.index(WEIGHTS_FILE)] = (
            f"{WEIGHTS_FILE} (not in the repo at this revision; if it has only pickled "
            "pytorch_model.bin weights, the hub's safetensors conversion is often an open pull "
            f"request: try {repo_id}@refs/pr/N)"
        )
    if missing:
        raise MissingModelFilesError(files.source, missing)


def _download(source: str, cache_dir: Path | None) -> SourceFiles:
    # Imported here: local directories need no hub client.
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo_id, revision = parse_repo_id(source)
    try:
        snapshot = Path(
            snapshot_download(
                repo_id,
                revision=revision,
                cache_dir=cache_dir,
                allow_patterns=[*_FIRST_DOWNLOAD, *_DENSE_PATTERNS],
            )
        )
        if not (snapshot / TOKENIZER_NAME).is_file():
            # Snapshot folders are named by commit sha: the vocabulary comes from the same commit.
            snapshot_download(
                repo_id,
                revision=snapshot.name,
                cache_dir=cache_dir,
                allow_patterns=list(_VOCABULARY_FILES),
            )
    except RevisionNotFoundError as error:
        raise ModelSourceError(f"{repo_id}: revision {revision!r} not found on the hub") from error
    except RepositoryNotFoundError as error:
        raise ModelSourceError(
            f"{repo_id}: repository not found on the hub (or private: set HF_TOKEN)"
        ) from error
    except LocalEntryNotFoundError as error:
        raise ModelSourceError(
            f"{source}: not in the local cache and the hub cannot be reached. Point MODEL_NAME "
            "at a local model directory, set HF_ENDPOINT to a reachable mirror, or fill the "
            "cache (HF_HOME) first"
        ) from error
    except HFValidationError as error:
        raise ModelSourceError(
            f"{source!r} is neither a directory nor a valid hub repo id: {error}"
        ) from error
    except HfHubHTTPError as error:
        raise ModelSourceError(f"{source}: the hub answered with an error: {error}") from error
    # Snapshot folders are named by commit sha.
    return SourceFiles(source=source, root=snapshot, revision=snapshot.name)
