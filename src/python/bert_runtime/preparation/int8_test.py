"""
prepare's int8 step: outlier channels found on built-in texts, accuracy measured against fp32 and
recorded in the manifest, and int8 refused (naming fp32) when it misses its bounds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from bert_runtime.config import Precision
from bert_runtime.errors import PrecisionRefusedError
from bert_runtime.manifest import MODEL_NAME, TOKENIZER_NAME, read_manifest
from bert_runtime.preparation import accuracy_check, cli
from bert_runtime.preparation.accuracy_check import check_texts, measure, require
from bert_runtime.preparation.calibration import (
    CALIBRATION_TEXTS,
    channel_ranges,
    outlier_channels,
)
from bert_runtime.preparation.int8 import special_tokens
from bert_runtime.preparation.prepare import prepare
from bert_runtime.preparation.probe import Probe
from bert_runtime.testutil.models import TINY_BERT, TINY_MPNET_MLM, prepared_model


def test_the_manifest_records_what_the_check_measured(root: Path) -> None:
    accuracy = read_manifest(prepared_model(root, "tiny-bert", "int8")).accuracy
    assert accuracy["int8_vs_fp32_min_cosine"] >= accuracy_check.INT8_MIN_COSINE
    assert accuracy["int8_vs_fp32_mean_cosine"] >= accuracy["int8_vs_fp32_min_cosine"]
    assert accuracy["int8_alone_vs_batched_min_cosine"] >= accuracy_check.BATCH_MIN_COSINE
    assert accuracy["texts"] == len(check_texts(special_tokens(TINY_BERT / TOKENIZER_NAME)))
    assert read_manifest(prepared_model(root, "tiny-bert")).accuracy == {}


def test_the_check_texts_write_out_the_model_s_special_tokens() -> None:
    texts = check_texts(special_tokens(TINY_MPNET_MLM / TOKENIZER_NAME))
    assert "" in texts and any(len(t) > 1000 for t in texts)
    assert "a <pad> b <pad> c" in texts and "a <mask> b <mask> c" in texts
    assert not set(texts) & set(CALIBRATION_TEXTS)


def test_a_model_below_the_bound_is_refused_naming_fp32(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(accuracy_check, "INT8_MIN_COSINE", 1.01)  # more than int8 can keep
    out = tmp_path / "int8"
    with pytest.raises(PrecisionRefusedError, match=r"--precision fp32") as refused:
        prepare(str(TINY_BERT), out, precision=Precision.INT8)
    assert (refused.value.precision, refused.value.alternative) == ("int8", "fp32")
    assert "min cosine 0.99" in str(refused.value) and "needs >= 1.01" in str(refused.value)
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing half written
    assert cli.main([str(TINY_BERT), "--out", str(out), "--precision", "int8"]) == 1
    assert "int8 is refused" in capsys.readouterr().err


def test_the_check_measures_the_model_it_is_given(root: Path, tmp_path: Path) -> None:
    """Another checkpoint's int8 graph in place of this one's fails the check."""
    fp32 = onnx.load(prepared_model(root, "tiny-bert") / MODEL_NAME)
    other = onnx.load(prepared_model(root, "tiny-bert-cls", "int8") / MODEL_NAME)
    probe = _probe(check_texts(special_tokens(TINY_BERT / TOKENIZER_NAME)))
    accuracy = measure(fp32, other, probe, tmp_path)
    assert accuracy.min_cosine < accuracy_check.INT8_MIN_COSINE
    with pytest.raises(PrecisionRefusedError):
        require(accuracy)
    own = onnx.load(prepared_model(root, "tiny-bert", "int8") / MODEL_NAME)
    require(measure(fp32, own, probe, tmp_path))


def test_calibration_finds_a_channel_made_an_outlier(root: Path, tmp_path: Path) -> None:
    """
    Channel 5 of one FFN output layer's input scaled by 50 (its weight row by 1/50, so the model
    computes the same) becomes an outlier there, and only there.
    """
    model = onnx.load(prepared_model(root, "tiny-bert") / MODEL_NAME)
    probe = _probe(CALIBRATION_TEXTS)
    before = outlier_channels(channel_ranges(model, probe, tmp_path))
    (node,) = (n for n in model.graph.node if n.name.startswith("l1_ffn_out_matmul"))
    assert sorted(before) == sorted(
        n.name for n in model.graph.node if n.op_type == "MatMul" and n.name.startswith("l")
    )
    assert 5 not in before[node.name]
    weights = {init.name: init for init in model.graph.initializer}
    row_scale = onnx.numpy_helper.to_array(weights[node.input[1]]).copy()
    row_scale[5] /= 50.0
    weights[node.input[1]].CopyFrom(onnx.numpy_helper.from_array(row_scale, node.input[1]))
    scale = np.ones(row_scale.shape[0], np.float32)
    scale[5] = 50.0
    model.graph.initializer.append(onnx.numpy_helper.from_array(scale, "channel_scale"))
    model.graph.node.insert(
        list(model.graph.node).index(node),
        onnx.helper.make_node("Mul", [node.input[0], "channel_scale"], ["scaled"]),
    )
    node.input[0] = "scaled"
    after = outlier_channels(channel_ranges(model, probe, tmp_path))
    assert 5 in after[node.name]
    assert {name: list(v) for name, v in after.items() if name != node.name} == {
        name: list(v) for name, v in before.items() if name != node.name
    }


def _probe(texts: list[str] | tuple[str, ...]) -> Probe:
    return Probe.of(texts, TINY_BERT / TOKENIZER_NAME, 64, pad_id=0)


def test_special_tokens_are_read_in_id_order(tmp_path: Path) -> None:
    added = [
        {"id": 3, "content": "[SEP]", "special": True},
        {"id": 0, "content": "[PAD]", "special": True},
        {"id": 9, "content": "hello", "special": False},
    ]
    (tmp_path / "tokenizer.json").write_text(json.dumps({"added_tokens": added}))
    assert special_tokens(tmp_path / "tokenizer.json") == ["[PAD]", "[SEP]"]
