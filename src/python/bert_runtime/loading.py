"""
From a model source to a ready Engine in one call: prepared into a cache on first use, reused after.

This is what the HTTP service does with MODEL_NAME, here for every caller of the library, so a
script and a server given the same cache directory share one prepared copy of a model.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

from bert_runtime.config import (
    DEFAULT_CACHE_DIR,
    Device,
    EngineConfig,
    Precision,
    default_precision,
)
from bert_runtime.errors import ConfigError
from bert_runtime.manifest import MANIFEST_NAME, read_manifest
from bert_runtime.serving.engine import Engine

logger = logging.getLogger(__name__)


def prepared_dir(
    source: str | Path,
    *,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    device: Device = Device.CPU,
    precision: Precision | None = None,
    packing: bool = False,
) -> Path:
    """
    The prepared directory for `source`: `source` itself when it is one (it has a manifest),
    else `cache_dir/prepared/<name>-<hash>-<device>-<precision>` (`cache_entry_stem`), prepared
    there on first use.

    `source` is a hub repo id (`org/name[@revision]`) or a local checkpoint directory, as for
    `prepare`. Later calls check the inputs' hashes and rebuild only when they changed (`prepare`
    is idempotent). Without `precision`: fp16 on CUDA, fp32 on CPU, or a prepared directory's own.
    `packing` (CUDA): padding-free attention, in an entry of its own (`...-packed`).
    """
    given = Path(source).expanduser()
    if (given / MANIFEST_NAME).is_file():
        prepared_at = read_manifest(given).precision
        if precision is not None and precision is not prepared_at:
            raise ConfigError(
                f"{given} is prepared at {prepared_at.value}, not {precision.value}: ask for "
                f"{prepared_at.value} (or no precision), or prepare its checkpoint again"
            )
        return given
    # Imported here: a directory prepared elsewhere needs no preparation code at all.
    from bert_runtime.preparation.prepare import prepare

    chosen = precision or default_precision(device)
    entry = f"{cache_entry_stem(source)}-{device.value}-{chosen.value}"
    if packing:
        entry += "-packed"
    target = Path(cache_dir).expanduser() / "prepared" / entry
    logger.info("preparing %s into %s (checked and kept when already there)", source, target)
    prepare(str(source), target, device=device, precision=chosen, packing=packing)
    return target


def cache_entry_stem(source: str | Path) -> str:
    """
    A readable name (a directory's own name, or the hub id with `/` and `@` made `--`) and a hash
    of what `source` names (the directory's absolute path, or the hub id as given): `a/b` and
    `a--b`, or one relative path from two working directories, never share an entry.
    """
    local = Path(source).expanduser()
    if local.is_dir():
        identity = str(local.resolve())
        readable = Path(identity).name
    else:
        identity = readable = str(source)
    readable = re.sub(r"[^A-Za-z0-9._-]+", "--", readable.strip("/"))
    return f"{readable}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"


def load_engine(
    source: str | Path,
    config: EngineConfig | None = None,
    *,
    precision: Precision | None = None,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    packing: bool = False,
) -> Engine:
    """
    An Engine on `source` (a hub repo id, a checkpoint directory or a prepared directory), for
    `config.device`, prepared through `prepared_dir` when needed.
    """
    config = config or EngineConfig()
    model_dir = prepared_dir(
        source, cache_dir=cache_dir, device=config.device, precision=precision, packing=packing
    )
    return Engine(model_dir, config)
