"""Rows padded up to a few counts (CUDA's default): the shapes, the warm-up, and the answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bert_runtime.config import BatchBudget, EngineConfig
from bert_runtime.serving.device_runner import DeviceRunner
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.planner import BatchPlanner
from bert_runtime.serving.row_buckets import bucket_rows, row_buckets
from bert_runtime.serving.tasks import (
    Classification,
    ClassifyRequest,
    Embedding,
    EmbedRequest,
    FillMaskRequest,
)
from bert_runtime.serving.warmup import warmup_shapes
from bert_runtime.testutil.models import prepared_model


def test_row_counts_are_powers_of_two_then_steps_of_32_up_to_the_budget() -> None:
    assert row_buckets(256) == (1, 2, 4, 8, 16, 32, 64, 96, 128, 160, 192, 224, 256)
    assert row_buckets(50) == (1, 2, 4, 8, 16, 32, 50)
    assert row_buckets(1) == (1,)


def test_a_batch_is_padded_to_its_bucket_but_never_past_the_token_budget() -> None:
    planner = BatchPlanner(BatchBudget(256, 32768), 0, 512)
    assert bucket_rows(planner, 100, 32) == 128
    assert bucket_rows(planner, 33, 128) == 64
    assert bucket_rows(planner, 256, 128) == 256
    # 136 padded tokens: the budget allows 240 rows, not the 256 of the next bucket.
    assert bucket_rows(planner, 230, 136) == 240
    assert all(rows <= bucket_rows(planner, rows, 136) <= 240 for rows in range(1, 241))


@pytest.mark.parametrize("budget", [BatchBudget(256, 32768), BatchBudget(64, 3000)])
def test_the_warm_up_runs_every_shape_a_bucketed_batch_can_have(budget: BatchBudget) -> None:
    planner = BatchPlanner(budget, 0, 512)
    shapes = set(warmup_shapes(planner, 128, on_cuda=True, bucketed_rows=True))
    for length in {planner.padded_length(n) for n in range(1, 129)}:
        fitting = [r for r in range(1, budget.max_rows + 1) if planner.fits(r, length)]
        for rows in fitting:
            assert (bucket_rows(planner, rows, length), length) in shapes


class RecordingSession:
    """The real ONNX Runtime session, noting the row count of every run (a spy, not a stand-in)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.rows: list[int] = []

    def get_inputs(self) -> Any:
        return self._session.get_inputs()

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.rows.append(feeds["input_ids"].shape[0])
        return list(self._session.run(outputs, feeds))


def test_padded_rows_change_no_answer_and_the_session_sees_only_buckets(tmp_path: Path) -> None:
    engine = Engine(prepared_model(tmp_path, "tiny-bert"), EngineConfig(max_sequence_length=32))
    texts = [f"text number {i} " * (1 + i % 5) for i in range(11)]
    sequences = engine.tokenizer.encode(texts)

    session = RecordingSession(engine._runner.session)
    runner = DeviceRunner(
        session,
        engine.config,
        False,
        engine.planner,
        engine.max_length,
        bucket_rows=True,
    )
    feeds = engine._runner.feeds(engine.pad(sequences))
    cls_rows, mean_rows = runner.run(feeds, ["cls_embedding", "mean_embedding"])
    assert session.rows == [16]
    assert mean_rows.shape[0] == 11
    plain = DeviceRunner(engine._runner.session, engine.config, False, engine.planner, 32)
    assert not plain.bucket_rows  # CPU keeps its batches as they are
    unpadded_cls, unpadded_mean = plain.run(feeds, ["cls_embedding", "mean_embedding"])
    np.testing.assert_allclose(mean_rows, unpadded_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cls_rows, unpadded_cls, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("model", "request_"),
    [
        ("tiny-bert-mlm", EmbedRequest()),  # its graph also takes mask positions (empty here)
        ("tiny-bert-cls", ClassifyRequest(second_text_start=3)),  # sentence pairs
        ("tiny-modernbert-cls", ClassifyRequest()),  # no token types
    ],
)
def test_every_head_gets_its_rows_bucketed_through_the_engine(
    tmp_path: Path, model: str, request_: EmbedRequest | ClassifyRequest
) -> None:
    prepared = prepared_model(tmp_path, model)
    bucketed = Engine(prepared, EngineConfig(max_sequence_length=32))
    plain = Engine(prepared, EngineConfig(max_sequence_length=32))
    session = RecordingSession(bucketed._runner.session)
    bucketed._runner = DeviceRunner(
        session, bucketed.config, False, bucketed.planner, bucketed.max_length, bucket_rows=True
    )
    sequences = bucketed.tokenizer.encode([f"words {i} " * (2 + i % 4) for i in range(5)])
    got = bucketed.run(sequences, [request_] * 5)
    want = plain.run(sequences, [request_] * 5)
    assert session.rows == [8]
    for mine, theirs in zip(got, want, strict=True):
        if isinstance(mine, Embedding) and isinstance(theirs, Embedding):
            np.testing.assert_allclose(mine.vector, theirs.vector, rtol=1e-5, atol=1e-6)
        else:
            assert isinstance(mine, Classification) and isinstance(theirs, Classification)
            assert mine.scores.keys() == theirs.scores.keys()
            np.testing.assert_allclose(
                list(mine.scores.values()), list(theirs.scores.values()), rtol=1e-5, atol=1e-6
            )


def test_fill_mask_runs_are_never_padded(tmp_path: Path) -> None:
    """A fill-mask run's outputs are one row per mask, not per text: its rows stay as they are."""
    engine = Engine(prepared_model(tmp_path, "tiny-bert-mlm"), EngineConfig(max_sequence_length=32))
    session = RecordingSession(engine._runner.session)
    engine._runner = DeviceRunner(
        session, engine.config, False, engine.planner, engine.max_length, bucket_rows=True
    )
    mask = engine.tokenizer.mask_token
    sequences = engine.tokenizer.encode([f"a {mask} b", f"c d {mask}", f"{mask} e"])
    results = engine.run(sequences, [FillMaskRequest(top_k=2)] * 3)
    assert session.rows == [3]
    assert [len(r.masks) for r in results] == [1, 1, 1]
