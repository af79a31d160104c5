"""Node placement read from real ONNX Runtime profiles (CPU sessions: every node on CPU)."""

from __future__ import annotations

import glob
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from bert_runtime.errors import ProviderUnavailableError
from bert_runtime.manifest import MODEL_NAME
from bert_runtime.serving import placement
from bert_runtime.testutil.models import prepared_model


def _profiled_run(model_dir: Path) -> placement.Placement:
    options = ort.SessionOptions()
    placement.enable_profiling(options)
    session = ort.InferenceSession(
        str(model_dir / MODEL_NAME), options, providers=["CPUExecutionProvider"]
    )
    ids = np.array([[2, 7, 8, 9, 3, 0]], np.int32)
    feeds = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int32)}
    feeds["token_type_ids"] = np.zeros_like(ids)
    session.run(["mean_embedding"], feeds)
    found = placement.finish_profiling(session)
    session.run(["mean_embedding"], feeds)  # no longer profiled: nothing left to clean
    return found


@pytest.fixture(scope="module")
def mpnet(tmp_path_factory: pytest.TempPathFactory) -> placement.Placement:
    return _profiled_run(prepared_model(tmp_path_factory.mktemp("placement"), "tiny-mpnet-cls"))


def test_every_node_run_is_read_with_its_provider_and_output_types(
    mpnet: placement.Placement,
) -> None:
    ops = [node.op_type for node in mpnet.nodes]
    assert ops.count("MultiHeadAttention") == 2 and "EmbedLayerNormalization" in ops
    assert mpnet.counts() == {"CPUExecutionProvider": len(mpnet.nodes)}
    embeddings = next(n for n in mpnet.nodes if n.op_type == "EmbedLayerNormalization")
    assert embeddings.output_types == ("float", "int32")


def test_shape_arithmetic_is_told_apart_from_float_work(mpnet: placement.Placement) -> None:
    shape_ops = {node.op_type for node in mpnet.cpu_shape_nodes()}
    # MPNet's position bias indexes a table with key - query distances: int64 arithmetic.
    assert {"Shape", "Range", "Sub"} <= shape_ops
    compute = {node.op_type for node in mpnet.cpu_compute()}
    assert {"MultiHeadAttention", "MatMul", "SkipLayerNormalization"} <= compute
    assert not shape_ops & {"MultiHeadAttention", "MatMul"}
    assert mpnet.memcpy_nodes() == []


def test_strict_cuda_refuses_float_work_on_cpu_and_names_it(mpnet: placement.Placement) -> None:
    # A CUDA session whose nodes all fell back to CPU looks exactly like this profile.
    with pytest.raises(ProviderUnavailableError, match=r"ran on CPU \(EmbedLayerNormalization"):
        placement.check_no_cpu_compute(mpnet)


def test_shape_arithmetic_alone_on_cpu_is_accepted(mpnet: placement.Placement) -> None:
    on_gpu = tuple(
        placement.NodeRun(n.name, n.op_type, "CUDAExecutionProvider", n.output_types)
        if n.computes_floats
        else n
        for n in mpnet.nodes
    )
    placement.check_no_cpu_compute(placement.Placement(on_gpu))


def test_profiling_leaves_no_file_behind(tmp_path: Path) -> None:
    before = set(glob.glob(f"{tempfile.gettempdir()}/bert-runtime-placement-*"))
    _profiled_run(prepared_model(tmp_path, "tiny-bert"))
    assert set(glob.glob(f"{tempfile.gettempdir()}/bert-runtime-placement-*")) == before
