"""Service settings, read from environment variables and validated at start-up.

msgspec (already under Litestar) does the typed conversion, so a bad value stops start-up with an
error that names the variable instead of failing on the first request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec

from bert_runtime import BatcherConfig, Device, EngineConfig


class SettingsError(ValueError):
    """The environment holds an invalid setting; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, rename="upper"):
    """Every setting of the service; the environment variable is the field name in upper case."""

    # The model to serve: a Hugging Face repo id (optionally `@revision`) or a local directory.
    model_name: str = "google-bert/bert-base-uncased"
    # The name clients use in URLs (/v1/models/<name>).
    served_model_name: Annotated[
        str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    ] = "bert"
    max_sequence_length: Annotated[int, msgspec.Meta(ge=2, le=512)] = 128
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 32
    onnx_execution_provider: Literal["CUDA", "CPU"] = "CPU"
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @property
    def device(self) -> Device:
        return Device.CUDA if self.onnx_execution_provider == "CUDA" else Device.CPU

    def engine_config(self) -> EngineConfig:
        return EngineConfig(device=self.device, max_sequence_length=self.max_sequence_length)

    def batcher_config(self) -> BatcherConfig:
        config = BatcherConfig(max_batch_size=self.batch_size)
        config.check_fits(self.max_sequence_length)
        return config


# Values compared case-insensitively: `cuda` and `CUDA` mean the same to an operator.
_UPPERCASED = ("ONNX_EXECUTION_PROVIDER", "LOG_LEVEL")
ENV_VARS: tuple[str, ...] = tuple(field.encode_name for field in msgspec.structs.fields(Settings))


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from `environ` (usually os.environ), ignoring unrelated variables."""
    raw = {name: environ[name] for name in ENV_VARS if name in environ}
    for name in _UPPERCASED:
        if name in raw:
            raw[name] = raw[name].strip().upper()
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
        # Cross-field checks live in the runtime's config types; surface them the same way.
        settings.engine_config()
        settings.batcher_config()
    except (msgspec.ValidationError, ValueError) as error:
        raise SettingsError(f"invalid setting: {_name_variable(str(error))}") from error
    return settings


def _name_variable(message: str) -> str:
    # msgspec says "... - at `$.BATCH_SIZE`"; an operator wants "BATCH_SIZE: ...".
    head, sep, where = message.rpartition(" - at `$.")
    return f"{where.rstrip('`')}: {head}" if sep else message
