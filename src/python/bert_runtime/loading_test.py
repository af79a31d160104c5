"""load_engine / prepared_dir: one call from a source to an Engine, prepared once into a cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bert_runtime.config import Device, EngineConfig, Precision
from bert_runtime.errors import ConfigError
from bert_runtime.loading import cache_entry_stem, load_engine, prepared_dir
from bert_runtime.manifest import MODEL_NAME, read_manifest
from bert_runtime.testutil.fake_hub import commit_of, serve_hub, url_of
from bert_runtime.testutil.models import TINY_BERT, fixture_engine, golden_texts, prepared_model


def test_a_checkpoint_is_prepared_into_the_cache_once_and_reused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    engine = load_engine(str(TINY_BERT), EngineConfig(max_sequence_length=64), cache_dir=cache)
    (made,) = (cache / "prepared").iterdir()
    assert made.name.startswith("tiny-bert-") and made.name.endswith("-cpu-fp32")
    assert read_manifest(made).source == str(TINY_BERT.resolve())
    stamp = (made / MODEL_NAME).stat().st_mtime_ns
    again = prepared_dir(TINY_BERT, cache_dir=cache)
    assert again == made
    assert (made / MODEL_NAME).stat().st_mtime_ns == stamp, "a second call rebuilt the model"
    reference = fixture_engine(prepared_model(tmp_path, "tiny-bert"))
    np.testing.assert_allclose(
        engine.embed(golden_texts()), reference.embed(golden_texts()), atol=1e-6, rtol=0
    )


def test_a_directory_has_one_cache_entry_however_it_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoints = tmp_path / "checkpoints"
    shutil.copytree(TINY_BERT, checkpoints / "model")
    monkeypatch.chdir(checkpoints)
    by_relative_path = prepared_dir("model", cache_dir=tmp_path / "cache")
    by_absolute_path = prepared_dir(checkpoints / "model", cache_dir=tmp_path / "cache")
    assert by_relative_path == by_absolute_path
    assert by_relative_path.name.startswith("model-")


def test_sources_that_read_alike_get_their_own_cache_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, each of these pairs shared one entry and rebuilt it in turn."""
    made = []
    for place in ("first", "second"):
        shutil.copytree(TINY_BERT, tmp_path / place / "model")
        monkeypatch.chdir(tmp_path / place)
        made.append(prepared_dir("model", cache_dir=tmp_path / "cache"))
        assert read_manifest(made[-1]).source == str((tmp_path / place / "model").resolve())
    assert made[0] != made[1]
    assert cache_entry_stem("google-bert/model") != cache_entry_stem("google-bert--model")


def test_precision_picks_its_own_cache_entry(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    int8 = prepared_dir(TINY_BERT, cache_dir=cache, precision=Precision.INT8)
    fp32 = prepared_dir(TINY_BERT, cache_dir=cache)
    assert int8.name.endswith("-cpu-int8") and fp32.name.endswith("-cpu-fp32")
    assert read_manifest(int8).precision is Precision.INT8
    assert read_manifest(fp32).precision is Precision.FP32


def test_a_prepared_directory_is_used_as_it_is(tmp_path: Path) -> None:
    prepared = prepared_model(tmp_path, "tiny-bert", "int8")
    cache = tmp_path / "cache"
    assert prepared_dir(prepared, cache_dir=cache) == prepared
    assert prepared_dir(str(prepared), cache_dir=cache, precision=Precision.INT8) == prepared
    assert not cache.exists()
    with pytest.raises(ConfigError, match=r"is prepared at int8, not fp32"):
        prepared_dir(prepared, cache_dir=cache, precision=Precision.FP32)


def test_a_precision_the_device_cannot_run_is_refused_before_any_work(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(ConfigError, match="fp16 is not supported on cpu"):
        prepared_dir(TINY_BERT, cache_dir=cache, device=Device.CPU, precision=Precision.FP16)
    assert not cache.exists()


def test_a_hub_repo_id_loads_through_the_hub_and_the_cache(tmp_path: Path) -> None:
    """A child process: huggingface_hub reads HF_ENDPOINT when it is first imported."""
    repo = "google-bert/tiny-bert"
    shutil.copytree(TINY_BERT, tmp_path / "hub" / repo)
    code = (
        "import sys; from bert_runtime import EngineConfig, load_engine; "
        "e = load_engine(sys.argv[1], EngineConfig(max_sequence_length=64), cache_dir=sys.argv[2]);"
        " print(e.manifest.revision, e.embed(['hello world']).shape)"
    )
    cache = tmp_path / "cache"
    with serve_hub(tmp_path / "hub") as server:
        environment = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join(sys.path),
            "HF_ENDPOINT": url_of(server),
            "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        done = subprocess.run(
            [sys.executable, "-c", code, repo, str(cache)],
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [commit_of(tmp_path / "hub" / repo), "(1,", "32)"]
    (made,) = (cache / "prepared").glob("google-bert--tiny-bert-*-cpu-fp32")
    assert read_manifest(made).source == repo
