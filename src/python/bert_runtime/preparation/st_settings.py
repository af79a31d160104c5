"""
A sentence-transformers model's own settings (pooling, normalization, input length, lowercasing), so
that the embeddings a client gets without asking for more are the ones sentence-transformers itself
would give.

sentence-transformers describes a model as a list of modules (`modules.json`): the transformer,
then usually Pooling (`1_Pooling/config.json` says which) and Normalize. A model with modules we do
not apply (Dense projections, other pooling modes) is refused rather than served with embeddings
that quietly differ from the library's. Its `sentence_bert_config.json` says how many tokens the
library feeds the model (`max_seq_length`, often below the position embeddings' 512) and whether it
lowercases texts before the tokenizer sees them (`do_lower_case`); its
`config_sentence_transformers.json` names the prompts put in front of texts ("query: ", ...) and
the one the library applies when a caller names none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bert_runtime.config import Pooling
from bert_runtime.errors import MissingModelFilesError, ModelSourceError, UnsupportedModelError
from bert_runtime.preparation.sources import (
    MODULES_FILE,
    SENTENCE_CONFIG_FILE,
    ST_CONFIG_FILE,
    SourceFiles,
)

_APPLIED_MODULES = ("Transformer", "Pooling", "Normalize")
_POOLING_MODES = {"pooling_mode_cls_token": Pooling.CLS, "pooling_mode_mean_tokens": Pooling.MEAN}


@dataclass(frozen=True)
class SentenceTransformersSettings:
    """What a model's sentence-transformers files say; the defaults are a plain checkpoint's."""

    # What an embedding request that names neither pooling nor normalization gets.
    pooling: Pooling = Pooling.MEAN
    normalize: bool = True
    # sentence-transformers' max_seq_length: it truncates longer inputs there, so we do too.
    max_length: int | None = None
    # do_lower_case: the library lowercases texts before tokenizing them.
    lowercase: bool = False
    # Named prefixes for texts, and the one used when a request names none (None: no prompt).
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None


def read_st_settings(files: SourceFiles) -> SentenceTransformersSettings:
    """The model's sentence-transformers settings, or a plain checkpoint's without them."""
    max_length, lowercase = _read_sentence_config(files)
    prompts, default_prompt_name = _read_prompts(files)
    pooling, normalize, include_prompt = _read_modules(files)
    # Mean pooling without the prompt's tokens; the CLS token is the same either way.
    if not include_prompt and pooling is Pooling.MEAN and any(prompts.values()):
        raise UnsupportedModelError(
            f"{files.source}: its Pooling module averages without the prompt's tokens "
            "(include_prompt false), which bert_runtime does not do"
        )
    return SentenceTransformersSettings(
        pooling, normalize, max_length, lowercase, prompts, default_prompt_name
    )


def _read_modules(files: SourceFiles) -> tuple[Pooling, bool, bool]:
    """Pooling, normalize and include_prompt from modules.json and the Pooling module's config."""
    if MODULES_FILE not in files.present():
        return Pooling.MEAN, True, True
    modules = json.loads(files.path(MODULES_FILE).read_text())
    if not isinstance(modules, list) or not all(
        isinstance(m, dict) and isinstance(m.get("type"), str) for m in modules
    ):
        raise ModelSourceError(f"{files.source}: {MODULES_FILE} is not a list of typed modules")
    # "sentence_transformers.models.Pooling" -> "Pooling"
    kinds = {m["type"].rsplit(".", 1)[-1]: m for m in modules}
    others = [m["type"] for m in modules if m["type"].rsplit(".", 1)[-1] not in _APPLIED_MODULES]
    if others:
        raise UnsupportedModelError(
            f"{files.source}: {MODULES_FILE} lists {', '.join(others)}, which bert_runtime does "
            f"not apply (it applies {', '.join(_APPLIED_MODULES)})"
        )
    pooling, include_prompt = Pooling.MEAN, True
    if "Pooling" in kinds:
        name = f"{kinds['Pooling']['path']}/config.json"
        if not files.path(name).is_file():
            raise MissingModelFilesError(files.source, [name])
        settings = json.loads(files.path(name).read_text())
        modes = sorted(
            k for k, v in settings.items() if k.startswith("pooling_mode_") and v is True
        )
        if len(modes) != 1 or modes[0] not in _POOLING_MODES:
            raise UnsupportedModelError(
                f"{files.source}: {name} asks for {' + '.join(modes) or 'no pooling mode'}; "
                f"bert_runtime pools with one of {', '.join(sorted(_POOLING_MODES))}"
            )
        pooling = _POOLING_MODES[modes[0]]
        include_prompt = settings.get("include_prompt", True) is not False
    return pooling, "Normalize" in kinds, include_prompt


def _read_prompts(files: SourceFiles) -> tuple[dict[str, str], str | None]:
    """`prompts` and `default_prompt_name` from config_sentence_transformers.json."""
    if ST_CONFIG_FILE not in files.present():
        return {}, None
    settings = json.loads(files.path(ST_CONFIG_FILE).read_text())
    if not isinstance(settings, dict):
        raise ModelSourceError(f"{files.source}: {ST_CONFIG_FILE} is not a JSON object")
    prompts = settings.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()
    ):
        raise ModelSourceError(f"{files.source}: {ST_CONFIG_FILE} prompts must map names to text")
    default = settings.get("default_prompt_name")
    if default is not None and default not in prompts:
        raise ModelSourceError(
            f"{files.source}: {ST_CONFIG_FILE} default_prompt_name {default!r} is not one of its "
            f"prompts ({', '.join(sorted(prompts)) or 'none'})"
        )
    return prompts, default


def _read_sentence_config(files: SourceFiles) -> tuple[int | None, bool]:
    """`max_seq_length` (None if absent) and `do_lower_case` from sentence_bert_config.json."""
    if SENTENCE_CONFIG_FILE not in files.present():
        return None, False
    settings = json.loads(files.path(SENTENCE_CONFIG_FILE).read_text())
    if not isinstance(settings, dict):
        raise ModelSourceError(f"{files.source}: {SENTENCE_CONFIG_FILE} is not a JSON object")
    value = settings.get("max_seq_length")
    # bool is an int subclass; `true` is no length.
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 2):
        raise ModelSourceError(
            f"{files.source}: {SENTENCE_CONFIG_FILE} max_seq_length must be an integer >= 2, "
            f"got {value!r}"
        )
    lowercase = settings.get("do_lower_case", False)
    if not isinstance(lowercase, bool):
        raise ModelSourceError(
            f"{files.source}: {SENTENCE_CONFIG_FILE} do_lower_case must be true or false, "
            f"got {lowercase!r}"
        )
    return value, lowercase
