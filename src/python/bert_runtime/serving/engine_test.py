"""The Engine on CPU: providers, strictness, truncation, task checks, thread safety."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bert_runtime.config import (
    Device,
    EngineConfig,
    Pooling,
    Truncation,
    TruncationPolicy,
    TruncationSide,
)
from bert_runtime.errors import InputError, InputTooLongError, ProviderUnavailableError
from bert_runtime.manifest import MODEL_NAME
from bert_runtime.serving.engine import Engine
from bert_runtime.serving.session import create_session, run_bound
from bert_runtime.serving.task_inputs import EmbedOptions, Work
from bert_runtime.serving.tasks import (
    AnyResult,
    ClassifyRequest,
    Embedding,
    EmbedRequest,
    FillMaskRequest,
    FillMaskResult,
    TaskRequest,
)
from bert_runtime.testutil.models import golden_texts, prepared_model

LONG_TEXT = "the quick brown fox " * 40
R = TypeVar("R", bound=AnyResult)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepared_model(tmp_path_factory.mktemp("models"), "tiny-bert")


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Engine:
    return Engine(model_dir, EngineConfig(max_sequence_length=32))


def test_cpu_engine_reports_its_device(engine: Engine) -> None:
    info = engine.device_info
    assert info.provider == "CPUExecutionProvider"
    assert info.device is Device.CPU
    assert engine.warmup_seconds > 0
    assert engine.load_seconds > 0


def test_strict_cuda_without_cuda_is_a_clear_error(model_dir: Path) -> None:
    with pytest.raises(ProviderUnavailableError, match="CUDA requested"):
        Engine(model_dir, EngineConfig(device=Device.CUDA))


def test_lenient_cuda_without_cuda_warns_and_runs_on_cpu(
    model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        engine = Engine(model_dir, EngineConfig(device=Device.CUDA, strict_device=False))
    assert engine.device_info.device is Device.CPU
    assert "CUDA requested" in caplog.text
    assert engine.embed(["hello"]).shape == (1, 32)


def test_truncate_policy_cuts_to_the_limit_and_keeps_sep(engine: Engine) -> None:
    (ids,) = engine.tokenizer.encode([LONG_TEXT])
    assert len(ids) == 32
    assert ids[-1] == 3  # [SEP]


def test_reject_policy_names_the_offending_input(model_dir: Path) -> None:
    engine = Engine(
        model_dir, EngineConfig(max_sequence_length=32, truncation=TruncationPolicy.REJECT)
    )
    with pytest.raises(InputTooLongError, match="input 1 has"):
        engine.tokenizer.encode(["short", LONG_TEXT])


# 48 words, each one token: cut to 32 (30 words between [CLS] and [SEP]) either end shows.
ENDS_TEXT = "hello world " + "the quick brown fox " * 10 + "the cat sat on the mat"


def _whole(model_dir: Path, text: str) -> list[int]:
    """`text`'s ids uncut (the model's 64 positions hold it)."""
    (ids,) = Engine(model_dir, EngineConfig(max_sequence_length=64)).tokenizer.encode([text])
    return [int(i) for i in ids]


def test_a_call_can_cut_the_left_end_instead(engine: Engine, model_dir: Path) -> None:
    whole = _whole(model_dir, ENDS_TEXT)
    assert len(whole) == 50
    (left,) = engine.tokenizer.encode([ENDS_TEXT], Truncation(side=TruncationSide.LEFT))
    (right,) = engine.tokenizer.encode([ENDS_TEXT])
    assert left.tolist() == [2, *whole[-31:-1], 3]
    assert right.tolist() == [*whole[:31], 3]
    # The override is the call's own: the next call without one cuts the right end again.
    (again,) = engine.tokenizer.encode([ENDS_TEXT])
    assert again.tolist() == right.tolist()


def test_a_call_can_reject_or_truncate_whatever_the_engine_does(
    engine: Engine, model_dir: Path
) -> None:
    with pytest.raises(InputTooLongError, match="input 1 has 50 tokens"):
        engine.tokenizer.encode(["short", ENDS_TEXT], Truncation(TruncationPolicy.REJECT))
    strict = Engine(
        model_dir, EngineConfig(max_sequence_length=32, truncation=TruncationPolicy.REJECT)
    )
    with pytest.raises(InputTooLongError):
        strict.tokenizer.encode([ENDS_TEXT])
    # The engine's policy is kept when a call names only the side: REJECT still rejects.
    with pytest.raises(InputTooLongError):
        strict.tokenizer.encode([ENDS_TEXT], Truncation(side=TruncationSide.LEFT))
    (cut,) = strict.tokenizer.encode([ENDS_TEXT], Truncation(TruncationPolicy.TRUNCATE))
    assert cut.tolist() == [*_whole(model_dir, ENDS_TEXT)[:31], 3]


def test_a_pair_cut_from_the_left_keeps_the_query_and_the_texts_end(
    engine: Engine, model_dir: Path
) -> None:
    query = "the cat"
    whole = _whole(model_dir, ENDS_TEXT)[1:-1]
    left = Truncation(side=TruncationSide.LEFT)
    (ids,) = engine.tokenizer.encode_pairs([(query, ENDS_TEXT)], left)[0][:1]
    # [CLS] the cat [SEP] <the text's last 27 tokens> [SEP]: longest-first cuts only the text.
    assert len(ids) == 32
    assert ids.tolist()[4:-1] == whole[-27:]
    with pytest.raises(InputTooLongError, match="pair 0 has 53 tokens"):
        engine.tokenizer.encode_pairs([(query, ENDS_TEXT)], Truncation(TruncationPolicy.REJECT))


def test_calls_with_different_truncations_at_once_each_get_their_own(engine: Engine) -> None:
    options = [
        None,
        Truncation(side=TruncationSide.LEFT),
        Truncation(TruncationPolicy.TRUNCATE, TruncationSide.RIGHT),
    ]
    expected = [engine.tokenizer.encode([ENDS_TEXT], o)[0].tolist() for o in options]
    assert expected[0] == expected[2] != expected[1]
    with ThreadPoolExecutor(max_workers=6) as pool:
        calls = [options[i % 3] for i in range(300)]
        got = list(pool.map(lambda o: engine.tokenizer.encode([ENDS_TEXT], o)[0].tolist(), calls))
    assert got == [expected[i % 3] for i in range(300)]


def test_sequence_limit_is_capped_by_the_model_positions(model_dir: Path) -> None:
    engine = Engine(model_dir, EngineConfig(max_sequence_length=512))
    assert engine.max_length == 64
    (ids,) = engine.tokenizer.encode([LONG_TEXT])
    assert len(ids) == 64


def test_empty_text_embeds_as_cls_sep(engine: Engine) -> None:
    (ids,) = engine.tokenizer.encode([""])
    assert ids.tolist() == [2, 3]
    vector = engine.embed([""])[0]
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)


class RecordingEngine(Engine):
    """An Engine that notes the lengths in each batch handed to `run`, its public batch entry."""

    def __init__(self, model_dir: Path, config: EngineConfig) -> None:
        self.batches: list[list[int]] = []
        super().__init__(model_dir, config)

    def run(self, sequences: Sequence[np.ndarray], requests: Sequence[TaskRequest[R]]) -> list[R]:
        self.batches.append([len(s) for s in sequences])
        return super().run(sequences, requests)


def test_direct_calls_run_many_texts_as_planned_batches(model_dir: Path) -> None:
    engine = RecordingEngine(
        model_dir, EngineConfig(max_sequence_length=32, max_batch_tokens=64, warmup=False)
    )
    texts = [f"{'word ' * (i % 7)}text {i}" for i in range(40)]
    lengths = [len(s) for s in engine.tokenizer.encode(texts)]
    vectors = engine.embed(texts)
    batches = engine.batches
    assert vectors.shape == (len(texts), engine.manifest.hidden_size)
    assert len(batches) > 2
    assert all(engine.planner.fits(len(b), max(b)) for b in batches), batches
    # Sorted by length: each batch holds texts of about one length, in ascending order.
    assert [length for batch in batches for length in batch] == sorted(lengths)
    # Each row is its own text's vector, whatever batch it ran in.
    alone = np.stack([engine.embed([text])[0] for text in texts])
    np.testing.assert_allclose(vectors, alone, atol=2e-6, rtol=0)


def test_a_batch_runs_as_given_without_being_re_sorted(model_dir: Path) -> None:
    engine = RecordingEngine(
        model_dir, EngineConfig(max_sequence_length=32, max_batch_tokens=64, warmup=False)
    )
    sequences = engine.tokenizer.encode(["a long text of many words here", "short", "mid text"])
    engine.run(sequences, [EmbedRequest()] * 3)
    assert engine.batches == [[len(s) for s in sequences]]


def test_direct_calls_need_at_least_one_text(engine: Engine) -> None:
    with pytest.raises(InputError, match="no texts"):
        engine.embed([])
    with pytest.raises(InputError, match="at least one"):
        engine.run([], [])


def test_tasks_the_model_lacks_are_input_errors_naming_what_it_serves(engine: Engine) -> None:
    with pytest.raises(
        InputError, match="fill-mask needs a masked-LM head; this model serves: embed$"
    ):
        engine.fill_mask(["the [MASK] sat"])
    with pytest.raises(
        InputError, match="classify needs a classification head; this model serves: embed$"
    ):
        engine.classify(["hello"])
    with pytest.raises(InputError, match="no texts"):
        engine.tokenizer.encode([])


def test_fill_mask_needs_a_mask_token(tmp_path_factory: pytest.TempPathFactory) -> None:
    engine = Engine(prepared_model(tmp_path_factory.mktemp("mlm"), "tiny-bert-mlm"))
    with pytest.raises(InputError, match=r"input 1: text has no \[MASK\] token"):
        engine.fill_mask(["the [MASK] sat", "hello world"])
    for top_k in (0, 101):
        with pytest.raises(InputError, match="top_k must be from 1 to 100"):
            FillMaskRequest(top_k=top_k)
    cut = Engine(
        prepared_model(tmp_path_factory.mktemp("mlm-cut"), "tiny-bert-mlm"),
        EngineConfig(max_sequence_length=8),
    )
    with pytest.raises(
        InputError, match=r"within its first 8 tokens \(longer texts are cut there\)"
    ):
        cut.fill_mask([LONG_TEXT + " [MASK]"])


def test_pair_limits_and_bad_second_text_starts_are_input_errors(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    model = prepared_model(tmp_path_factory.mktemp("pairs"), "tiny-bert-cls")
    strict = Engine(model, EngineConfig(max_sequence_length=8, truncation=TruncationPolicy.REJECT))
    with pytest.raises(InputTooLongError):
        strict.classify_pairs([("is it good ?", "it is not very good , it was bad")])
    cutting = Engine(model, EngineConfig(max_sequence_length=8))
    (result,) = cutting.classify_pairs([("is it good ?", "it is not very good , it was bad")])
    assert result.num_tokens == 8
    (sequence,) = cutting.tokenizer.encode(["hello world"])
    for start in (-1, len(sequence)):
        with pytest.raises(InputError, match="second_text_start"):
            cutting.run([sequence], [ClassifyRequest(second_text_start=start)])


def test_batch_mixing_task_types_is_refused(engine: Engine) -> None:
    sequences = engine.tokenizer.encode(["a", "b"])
    with pytest.raises(InputError, match="one task type"):
        mixed: list[TaskRequest[Any]] = [EmbedRequest(), ClassifyRequest()]
        engine.run(sequences, mixed)


def test_concurrent_calls_from_threads_agree_with_sequential(engine: Engine) -> None:
    texts = golden_texts() * 4
    expected = engine.embed(texts)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda t: engine.embed([t])[0], texts))
    np.testing.assert_allclose(np.stack(results), expected, atol=1e-5)


def test_io_binding_returns_exactly_the_requested_outputs_of_a_plain_run(
    engine: Engine, model_dir: Path
) -> None:
    # The Engine binds on CUDA only; the helper is device-agnostic, so CPU runs its code.
    session = create_session(model_dir / MODEL_NAME, EngineConfig())
    batch = engine.planner.pad(engine.tokenizer.encode(golden_texts()))
    feeds = batch.model_inputs()
    for outputs in (["mean_embedding"], ["last_hidden_state", "cls_embedding"]):
        bound = run_bound(session, feeds, outputs, "cpu")
        plain = session.run(outputs, feeds)
        assert [a.shape for a in bound] == [a.shape for a in plain]
        for got, want in zip(bound, plain, strict=True):
            np.testing.assert_array_equal(got, want)


# Long and short texts alternate: the planner groups them by length.
MIXED = [f"{'the cat ' * (i * 2)}the [MASK] sat on the [MASK]" for i in (8, 0, 6, 2, 7, 1, 5, 3, 4)]


def _works(engine: Engine) -> list[Work[Any]]:
    inputs = engine.inputs
    works: list[Work[Any]] = []
    if engine.capabilities.fill_mask:
        works.append(inputs.fill_mask(MIXED, 3))
    if engine.capabilities.classification:
        works += [inputs.classify(MIXED), inputs.classify_pairs([(t, "a b c") for t in MIXED])]
    works += [
        inputs.embed(MIXED, EmbedOptions(pooling=Pooling.MEAN, normalize=True)),
        inputs.embed(MIXED, EmbedOptions(pooling=Pooling.CLS)),
    ]
    return works


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-bert-mlm", "tiny-bert-cls"])
def test_many_small_planned_batches_give_the_one_large_batchs_results(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    model = prepared_model(tmp_path_factory.mktemp("planned"), name)
    whole = Engine(model, EngineConfig(max_sequence_length=64, max_batch_tokens=4096, warmup=False))
    small = RecordingEngine(
        model, EngineConfig(max_sequence_length=64, max_batch_tokens=128, warmup=False)
    )
    for work in _works(whole):
        small.batches.clear()
        expected = whole.run(work.sequences, work.requests)
        got = small.run_work(work)
        assert len(small.batches) > 2
        assert len(got) == len(expected) == len(MIXED)
        for mine, theirs in zip(got, expected, strict=True):
            assert type(theirs) is type(mine)
            np.testing.assert_allclose(_values(mine), _values(theirs), atol=2e-6, rtol=0)
            assert mine.num_tokens == theirs.num_tokens


def _values(result: AnyResult) -> np.ndarray:
    if isinstance(result, Embedding):
        return result.vector
    if isinstance(result, FillMaskResult):
        ids = [[c.token_id for c in m] for m in result.masks]
        scores = [[c.score for c in m] for m in result.masks]
        return np.concatenate([np.ravel(ids), np.ravel(scores)])
    return np.array(list(result.scores.values()))


@pytest.fixture(scope="module")
def small_batches(model_dir: Path) -> Engine:
    return Engine(model_dir, EngineConfig(max_sequence_length=32, max_batch_tokens=40))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(
        st.one_of(st.text(max_size=30), st.text(alphabet="abc def", min_size=20, max_size=90)),
        min_size=1,
        max_size=16,
    )
)
def test_planned_batches_give_each_text_its_own_result(
    small_batches: Engine, texts: list[str]
) -> None:
    work = small_batches.inputs.embed(texts, EmbedOptions())
    together = small_batches.run_work(work)
    assert [r.num_tokens for r in together] == [len(s) for s in work.sequences]
    for sequence, result in zip(work.sequences, together, strict=True):
        (alone,) = small_batches.run([sequence], [EmbedRequest()])
        np.testing.assert_allclose(result.vector, alone.vector, atol=2e-6, rtol=0)
