"""
ModernBERT's settings beyond the fields it shares with BERT: which layers attend to the whole text
and which to a window, the two rotary bases, and its heads' pooling and activation.

Read from both config.json formats: transformers 4's (global_attn_every_n_layers, global_rope_theta,
local_rope_theta), as answerdotai/ModernBERT-base ships it, and transformers 5's (layer_types,
rope_parameters), which it also saves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bert_runtime.errors import UnsupportedModelError

_FULL = "full_attention"
_SLIDING = "sliding_attention"
# transformers' defaults when a config.json leaves them out.
_DEFAULT_GLOBAL_THETA = 160_000.0
_DEFAULT_LOCAL_THETA = 10_000.0
_HEAD_ACTIVATIONS = ("gelu", "tanh", "relu")


@dataclass(frozen=True)
class ModernBertSettings:
    """What shapes a ModernBERT graph besides BERT's sizes."""

    # Per layer: True where it attends to the whole text, False where to a window around each token.
    global_layers: tuple[bool, ...]
    global_rope_theta: float
    local_rope_theta: float
    # On windowed layers a token sees the keys at most this far away (local_attention / 2).
    half_window: int
    # The classifier's input: the first token's vector ("cls") or the masked mean ("mean").
    classifier_pooling: str
    # The prediction head's activation (masked-LM and classifier heads both use it).
    head_activation: str


def read_modernbert_settings(raw: Mapping[str, object], path: Path) -> ModernBertSettings:
    """ModernBERT's part of config.json, refusing what the graph cannot reproduce exactly."""
    layers = _int(raw, path, "num_hidden_layers", None)
    kinds = raw.get("layer_types")
    if kinds is None:
        every = _int(raw, path, "global_attn_every_n_layers", 3)
        kinds = [_SLIDING if i % every else _FULL for i in range(layers)]
    if not isinstance(kinds, list) or len(kinds) != layers or not set(kinds) <= {_FULL, _SLIDING}:
        raise UnsupportedModelError(
            f"{path}: layer_types must list {layers} of {_FULL!r} or {_SLIDING!r}, got {kinds!r}"
        )
    hidden_activation = raw.get("hidden_activation", "gelu")
    if hidden_activation != "gelu":
        raise UnsupportedModelError(
            f"{path}: hidden_activation {hidden_activation!r} is not supported (only 'gelu')"
        )
    head_activation = raw.get("classifier_activation", "gelu")
    if head_activation not in _HEAD_ACTIVATIONS:
        raise UnsupportedModelError(
            f"{path}: classifier_activation {head_activation!r} is not supported "
            f"(supported: {', '.join(_HEAD_ACTIVATIONS)})"
        )
    pooling = raw.get("classifier_pooling", "cls")
    if pooling not in ("cls", "mean"):
        raise UnsupportedModelError(f"{path}: classifier_pooling {pooling!r} is not supported")
    return ModernBertSettings(
        global_layers=tuple(kind == _FULL for kind in kinds),
        global_rope_theta=_rope_theta(raw, path, _FULL, "global_rope_theta", _DEFAULT_GLOBAL_THETA),
        local_rope_theta=_rope_theta(raw, path, _SLIDING, "local_rope_theta", _DEFAULT_LOCAL_THETA),
        half_window=_int(raw, path, "local_attention", 128) // 2,
        classifier_pooling=str(pooling),
        head_activation=str(head_activation),
    )


def _rope_theta(
    raw: Mapping[str, object], path: Path, kind: str, legacy_key: str, default: float
) -> float:
    """The rotary base of `kind` layers: rope_parameters (transformers 5) or the older key."""
    parameters = raw.get("rope_parameters")
    entry = parameters.get(kind) if isinstance(parameters, dict) else None
    if isinstance(entry, dict):
        rope_type = entry.get("rope_type", "default")
        if rope_type != "default":
            raise UnsupportedModelError(f"{path}: rope_type {rope_type!r} is not supported")
        return float(entry["rope_theta"])
    value = raw.get(legacy_key, default)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise UnsupportedModelError(f"{path}: {legacy_key} {value!r} is not a number")
    return float(value)


def _int(raw: Mapping[str, object], path: Path, key: str, default: int | None) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UnsupportedModelError(f"{path}: {key} {value!r} is not a positive integer")
    return value
