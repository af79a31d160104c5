"""CUDA library preloading: what ONNX Runtime's loader prints reaches our log, once per process."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import onnxruntime as ort
import pytest

from bert_runtime.serving.session import preload_cuda_libraries


@pytest.fixture(autouse=True)
def fresh_preload() -> Iterator[None]:
    preload_cuda_libraries.cache_clear()
    yield
    preload_cuda_libraries.cache_clear()


def test_preload_messages_go_to_the_log_not_stdout_and_run_once(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The loader is replaced: loading real CUDA libraries needs onnxruntime-gpu and its wheels
    # (docs/BENCHMARKS.md, CUDA, shows that check on a real install).
    calls: list[str] = []

    def fake_preload() -> None:
        calls.append("preload")
        print("Failed to load libcublasLt.so.13: cannot open shared object file")

    monkeypatch.setattr(ort, "preload_dlls", fake_preload, raising=False)
    with caplog.at_level(logging.WARNING):
        preload_cuda_libraries()
        preload_cuda_libraries()
    assert calls == ["preload"]
    assert "libcublasLt.so.13" in caplog.text
    assert capsys.readouterr().out == ""


def test_a_failing_preload_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_preload() -> None:
        raise RuntimeError("Invalid parameter of directory")

    monkeypatch.setattr(ort, "preload_dlls", broken_preload, raising=False)
    with caplog.at_level(logging.WARNING):
        preload_cuda_libraries()
    assert "could not preload the CUDA libraries: Invalid parameter" in caplog.text
