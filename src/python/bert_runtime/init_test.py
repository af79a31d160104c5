from __future__ import annotations

import subprocess
import sys

import pytest

import bert_runtime


def test_importing_the_package_does_not_load_onnxruntime() -> None:
    code = "import sys, bert_runtime; print('onnxruntime' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": ":".join(sys.path)},
    )
    assert done.stdout.strip() == "False"


def test_lazy_names_resolve_to_the_real_objects() -> None:
    from bert_runtime.serving.engine import Engine

    assert bert_runtime.Engine is Engine
    for name in bert_runtime.__all__:
        assert getattr(bert_runtime, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        bert_runtime.Nope  # noqa: B018
