"""
A sentence-transformers model's own settings (pooling, Dense projections, normalization, input
length, lowercasing, prompts), so that the embeddings a client gets without asking for more are the
ones sentence-transformers itself would give.

sentence-transformers describes a model as a list of modules (`modules.json`): the transformer,
then usually Pooling (`1_Pooling/config.json` says which), sometimes Dense projections of the pooled
vector (LaBSE), and Normalize. A model with modules we do not apply (other pooling modes or module
types, Dense activations other than tanh and identity) is refused rather than served with
embeddings that quietly differ from the library's. Its `sentence_bert_config.json` says how many
tokens the library feeds the model (`max_seq_length`, often below the position embeddings' 512) and
whether it lowercases texts before the tokenizer sees them (`do_lower_case`); its
`config_sentence_transformers.json` names the prompts put in front of texts ("query: ", ...) and
the one the library applies when a caller names none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bert_runtime.config import Pooling
from bert_runtime.errors import MissingModelFilesError, ModelSourceError, UnsupportedModelError
from bert_runtime.files import parse_json, read_json
from bert_runtime.preparation.sources import (
    MODULES_FILE,
    PICKLED_WEIGHTS_FILE,
    SENTENCE_CONFIG_FILE,
    ST_CONFIG_FILE,
    SourceFiles,
    pickled_weights_note,
)
from bert_runtime.preparation.weights import read_safetensors

_APPLIED_MODULES = ("Transformer", "Pooling", "Dense", "Normalize")
_POOLING_MODES = {"pooling_mode_cls_token": Pooling.CLS, "pooling_mode_mean_tokens": Pooling.MEAN}
_POOLING_NAMES = {"cls": Pooling.CLS, "mean": Pooling.MEAN}
_DENSE_ACTIVATIONS = {
    "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.modules.linear.Identity": "identity",
}


@dataclass(frozen=True, eq=False)
class DenseLayer:
    """A sentence-transformers Dense module: activation(x @ weight.T + bias)."""

    weight: np.ndarray  # [out_features, in_features]
    bias: np.ndarray | None
    activation: str  # "tanh" or "identity"


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
    # Dense projections of the pooled vector, in order.
    dense: tuple[DenseLayer, ...] = ()


def read_st_settings(files: SourceFiles) -> SentenceTransformersSettings:
    """The model's sentence-transformers settings, or a plain checkpoint's without them."""
    max_length, lowercase = _read_sentence_config(files)
    prompts, default_prompt_name = _read_prompts(files)
    pooling, include_prompt, dense, normalize = _read_modules(files)
    # Mean pooling without the prompt's tokens; the CLS token is the same either way.
    if not include_prompt and pooling is Pooling.MEAN and any(prompts.values()):
        raise UnsupportedModelError(
            f"{files.source}: its Pooling module averages without the prompt's tokens "
            "(include_prompt false), which bert_runtime does not do"
        )
    return SentenceTransformersSettings(
        pooling, normalize, max_length, lowercase, prompts, default_prompt_name, dense
    )


def _read_modules(files: SourceFiles) -> tuple[Pooling, bool, tuple[DenseLayer, ...], bool]:
    """
    Pooling, include_prompt, Dense layers and normalize from modules.json and the modules'
    folders; the modules must come as Transformer, Pooling, Dense..., Normalize.
    """
    if MODULES_FILE not in files.present():
        return Pooling.MEAN, True, (), True
    modules = parse_json(files.path(MODULES_FILE))
    if not isinstance(modules, list) or not all(
        isinstance(m, dict) and isinstance(m.get("type"), str) for m in modules
    ):
        raise ModelSourceError(f"{files.source}: {MODULES_FILE} is not a list of typed modules")
    # "sentence_transformers.models.Pooling" -> "Pooling"
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    others = [
        m["type"] for m, kind in zip(modules, kinds, strict=True) if kind not in _APPLIED_MODULES
    ]
    if others:
        raise UnsupportedModelError(
            f"{files.source}: {MODULES_FILE} lists {', '.join(others)}, which bert_runtime does "
            f"not apply (it applies {', '.join(_APPLIED_MODULES)})"
        )
    in_order = kinds == sorted(kinds, key=_APPLIED_MODULES.index)
    repeated = any(kinds.count(kind) > 1 for kind in ("Transformer", "Pooling", "Normalize"))
    # Dense modules project the pooled vector: there must be one.
    if not in_order or repeated or ("Dense" in kinds and "Pooling" not in kinds):
        raise UnsupportedModelError(
            f"{files.source}: {MODULES_FILE} orders its modules {' -> '.join(kinds)}; "
            "bert_runtime applies Transformer -> Pooling -> Dense... -> Normalize"
        )
    pooling, include_prompt = Pooling.MEAN, True
    dense: list[DenseLayer] = []
    for module, kind in zip(modules, kinds, strict=True):
        if kind == "Pooling":
            pooling, include_prompt = _read_pooling(files, f"{module['path']}/config.json")
        elif kind == "Dense":
            dense.append(_read_dense(files, str(module["path"])))
    return pooling, include_prompt, tuple(dense), "Normalize" in kinds


def _read_pooling(files: SourceFiles, name: str) -> tuple[Pooling, bool]:
    """
    The pooling mode and include_prompt. sentence-transformers 6 writes `"pooling_mode": "mean"`;
    earlier versions one boolean per mode (`"pooling_mode_mean_tokens": true`).
    """
    if not files.path(name).is_file():
        raise MissingModelFilesError(files.source, [name])
    settings = read_json(files.path(name))
    include_prompt = settings.get("include_prompt", True) is not False
    mode = settings.get("pooling_mode")
    if isinstance(mode, str):
        if mode not in _POOLING_NAMES:
            raise UnsupportedModelError(
                f"{files.source}: {name} asks for pooling_mode {mode!r}; "
                f"bert_runtime pools with one of {', '.join(sorted(_POOLING_NAMES))}"
            )
        return _POOLING_NAMES[mode], include_prompt
    modes = sorted(k for k, v in settings.items() if k.startswith("pooling_mode_") and v is True)
    if len(modes) != 1 or modes[0] not in _POOLING_MODES:
        raise UnsupportedModelError(
            f"{files.source}: {name} asks for {' + '.join(modes) or 'no pooling mode'}; "
            f"bert_runtime pools with one of {', '.join(sorted(_POOLING_MODES))}"
        )
    return _POOLING_MODES[modes[0]], include_prompt


def _read_dense(files: SourceFiles, folder: str) -> DenseLayer:
    config_name, weights_name = f"{folder}/config.json", f"{folder}/model.safetensors"
    missing = [name for name in (config_name, weights_name) if not files.path(name).is_file()]
    if weights_name in missing and files.path(f"{folder}/{PICKLED_WEIGHTS_FILE}").is_file():
        missing[missing.index(weights_name)] = pickled_weights_note(weights_name)
    if missing:
        raise MissingModelFilesError(files.source, missing)
    settings = read_json(files.path(config_name))
    activation = _DENSE_ACTIVATIONS.get(str(settings.get("activation_function")))
    if activation is None:
        raise UnsupportedModelError(
            f"{files.source}: {config_name} activation_function "
            f"{settings.get('activation_function')!r} is not one bert_runtime applies "
            f"({', '.join(_DENSE_ACTIVATIONS)})"
        )
    tensors = read_safetensors(files.path(weights_name))
    if "linear.weight" not in tensors:
        raise ModelSourceError(f"{files.source}: {weights_name} has no linear.weight")
    weight = np.ascontiguousarray(tensors["linear.weight"], dtype=np.float32)
    bias = tensors.get("linear.bias")
    expected = (settings.get("out_features"), settings.get("in_features"))
    if weight.ndim != 2 or weight.shape != expected:
        raise ModelSourceError(
            f"{files.source}: {weights_name} linear.weight is {list(weight.shape)}, "
            f"its config says [out_features, in_features] = {list(expected)}"
        )
    return DenseLayer(
        weight,
        None if bias is None else np.ascontiguousarray(bias, dtype=np.float32),
        activation,
    )


def _read_prompts(files: SourceFiles) -> tuple[dict[str, str], str | None]:
    """`prompts` and `default_prompt_name` from config_sentence_transformers.json."""
    if ST_CONFIG_FILE not in files.present():
        return {}, None
    settings = read_json(files.path(ST_CONFIG_FILE))
    prompts = settings.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()
    ):
        raise ModelSourceError(f"{files.source}: {ST_CONFIG_FILE} prompts must map names to text")
    default = settings.get("default_prompt_name")
    # A name that is not a string is never among the prompts' names either.
    if default is not None and (not isinstance(default, str) or default not in prompts):
        raise ModelSourceError(
            f"{files.source}: {ST_CONFIG_FILE} default_prompt_name {default!r} is not one of its "
            f"prompts ({', '.join(sorted(prompts)) or 'none'})"
        )
    return prompts, default


def _read_sentence_config(files: SourceFiles) -> tuple[int | None, bool]:
    """`max_seq_length` (None if absent) and `do_lower_case` from sentence_bert_config.json."""
    if SENTENCE_CONFIG_FILE not in files.present():
        return None, False
    settings = read_json(files.path(SENTENCE_CONFIG_FILE))
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
