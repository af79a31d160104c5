from __future__ import annotations

from bert_runtime.errors import (
    BertRuntimeError,
    DeadlineExceeded,
    InputTooLongError,
    MissingModelFilesError,
    Overloaded,
)


def test_missing_files_error_lists_every_missing_file_sorted() -> None:
    error = MissingModelFilesError("/models/x", ["vocab.txt", "config.json"])
    assert error.missing == ["config.json", "vocab.txt"]
    assert "config.json, vocab.txt" in str(error)
    assert isinstance(error, BertRuntimeError)


def test_input_too_long_says_which_input_and_the_limit() -> None:
    error = InputTooLongError(index=3, num_tokens=600, max_tokens=512)
    assert "input 3 has 600 tokens" in str(error)
    assert isinstance(error, ValueError)


def test_overloaded_carries_retry_after() -> None:
    error = Overloaded("the queue is full (1024 texts waiting)", retry_after_s=0.5)
    assert error.retry_after_s == 0.5
    assert str(error) == "the queue is full (1024 texts waiting); retry after 0.5s"
    assert isinstance(DeadlineExceeded("waited 5.00s without starting", 1.0), Overloaded)
