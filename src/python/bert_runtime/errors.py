"""Typed errors of bert_runtime.

Callers (the HTTP service, the CLI) map these to status codes and messages; the library never
decides how an error is presented, only what went wrong.
"""

from __future__ import annotations


class BertRuntimeError(Exception):
    """Base class of every error bert_runtime raises on purpose."""


class ConfigError(BertRuntimeError, ValueError):
    """A configuration value is out of range or inconsistent with another one."""


class ModelSourceError(BertRuntimeError):
    """A model source cannot be read: missing directory, unreachable hub, unknown revision."""


class MissingModelFilesError(ModelSourceError):
    """A model source lacks files that preparation needs; `missing` names them."""

    def __init__(self, source: str, missing: list[str]) -> None:
        self.source = source
        self.missing = sorted(missing)
        super().__init__(
            f"model source {source!r} is missing required files: {', '.join(self.missing)}"
        )


class MissingTensorsError(ModelSourceError):
    """A checkpoint's weights lack tensors its config.json calls for; `missing` names them."""

    def __init__(self, weights: str, missing: list[str]) -> None:
        self.weights = weights
        self.missing = sorted(missing)
        super().__init__(
            f"{weights} lacks tensors that config.json calls for: {', '.join(self.missing)}"
        )


class UnsupportedModelError(BertRuntimeError):
    """The model's architecture or configuration is not one the graph builder supports."""


class ProviderUnavailableError(BertRuntimeError):
    """A provider was demanded (e.g. CUDA in strict mode) but the session could not use it."""


class InputError(BertRuntimeError, ValueError):
    """A request's input cannot be processed as given (empty batch, no [MASK] token, ...)."""


class InputTooLongError(InputError):
    """A text exceeds the maximum sequence length and the truncation policy is to reject it."""

    def __init__(self, index: int, num_tokens: int, max_tokens: int, kind: str = "input") -> None:
        self.index = index
        self.num_tokens = num_tokens
        self.max_tokens = max_tokens
        super().__init__(
            f"{kind} {index} has {num_tokens} tokens, more than the maximum of {max_tokens} "
            "(truncation is off)"
        )


class BudgetTooShortError(InputError):
    """
    The request's own texts need more model time than the client's budget (X-Request-Timeout),
    even on an idle server: retrying would not help, fewer texts or a longer budget would.
    """

    def __init__(self, work_s: float, budget_s: float) -> None:
        self.work_s = work_s
        self.budget_s = budget_s
        super().__init__(
            f"these texts need about {work_s:.2f}s of model time on this server, more than the "
            f"request's budget of {budget_s:.2f}s: send fewer or shorter texts, or a longer "
            "X-Request-Timeout"
        )


class Overloaded(BertRuntimeError):
    """
    The work would not start in time, or the queue is full: the caller should retry after
    `retry_after_s` seconds (an estimate: the time for the queue to drain enough).
    """

    def __init__(self, reason: str, retry_after_s: float) -> None:
        self.reason = reason
        self.retry_after_s = retry_after_s
        super().__init__(f"{reason}; retry after {retry_after_s:.1f}s")


class DeadlineExceeded(Overloaded):
    """A text waited in the queue past its deadline without starting, so it was not run."""


class ShuttingDown(BertRuntimeError):
    """The batcher is draining or closed and accepts no new work."""


class PrecisionRefusedError(BertRuntimeError):
    """
    A precision would serve answers too far from fp32's (prepare measures it); `alternative` names
    the precision to use instead.
    """

    def __init__(self, precision: str, reason: str, alternative: str) -> None:
        self.precision = precision
        self.alternative = alternative
        super().__init__(
            f"{precision} is refused for this model: {reason}; prepare it with precision "
            f"{alternative} instead (--precision {alternative})"
        )
