"""Model sources: local directories, and the real hub download code against a local fake hub.

huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE when imported, so hub cases run the `prepare`
CLI in a child process with its own environment, as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from bert_runtime.config import Pooling
from bert_runtime.errors import MissingModelFilesError, ModelSourceError
from bert_runtime.manifest import read_manifest
from bert_runtime.preparation import sources
from bert_runtime.testutil.fake_hub import commit_of, serve_hub, url_of
from bert_runtime.testutil.models import (
    TINY_BERT,
    TINY_ROBERTA_MLM,
    golden_roberta_texts,
    with_vocabulary_files_only,
    write_dense,
)

REPO = "google-bert/tiny-bert"


@pytest.fixture()
def hub(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    root = tmp_path / "hub"
    shutil.copytree(TINY_BERT, root / REPO)
    (root / REPO / "README.md").write_text("not downloaded: not needed\n")
    with serve_hub(root) as server:
        yield url_of(server), root / REPO, server.requests


def _prepare(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(sys.path),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "bert_runtime.preparation.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_hub_repo_is_downloaded_and_prepared(
    hub: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    url, repo_dir, requests = hub
    # Saved beside tokenizer.json, as most repos do: preparation reads tokenizer.json only.
    (repo_dir / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    out = tmp_path / "out"
    done = _prepare(
        [REPO, "--out", str(out), "--cache-dir", str(tmp_path / "cache")], HF_ENDPOINT=url
    )
    assert done.returncode == 0, done.stderr
    manifest = read_manifest(out)
    assert manifest.source == REPO
    assert manifest.revision == commit_of(repo_dir)
    assert any("/resolve/" in r and r.endswith("model.safetensors") for r in requests)
    for unneeded in ("README.md", "vocab.txt"):
        assert not any(r.endswith(unneeded) for r in requests), f"downloaded {unneeded}"


def test_a_sentence_transformers_repos_settings_are_downloaded_with_it(
    hub: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    url, repo_dir, requests = hub
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]
    (repo_dir / "modules.json").write_text(json.dumps(modules))
    write_dense(repo_dir / "2_Dense", np.eye(32)[:16], np.zeros(16))
    (repo_dir / "1_Pooling").mkdir()
    (repo_dir / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    (repo_dir / "sentence_bert_config.json").write_text('{"max_seq_length": 16}')
    prompts = {"prompts": {"query": "query: "}, "default_prompt_name": None}
    (repo_dir / "config_sentence_transformers.json").write_text(json.dumps(prompts))
    out = tmp_path / "out"
    done = _prepare(
        [REPO, "--out", str(out), "--cache-dir", str(tmp_path / "cache")], HF_ENDPOINT=url
    )
    assert done.returncode == 0, done.stderr
    assert any(r.endswith("/1_Pooling/config.json") for r in requests)
    assert any(r.endswith("/2_Dense/model.safetensors") for r in requests)
    manifest = read_manifest(out)
    assert (manifest.pooling, manifest.normalize) == (Pooling.CLS, False)
    assert manifest.max_sequence_length == 16
    assert manifest.prompts == {"query": "query: "}
    assert manifest.embedding_size == 16
    assert {"1_Pooling/config.json", "sentence_bert_config.json"} <= set(manifest.input_sha256)


def test_a_hub_repo_with_only_older_tokenizer_files_is_downloaded_and_prepared(
    tmp_path: Path,
) -> None:
    """A RoBERTa repo saved before tokenizer.json: vocab.json, merges.txt, special_tokens_map."""
    repo = "FacebookAI/tiny-roberta-legacy"
    repo_dir = tmp_path / "hub" / repo
    shutil.copytree(TINY_ROBERTA_MLM, repo_dir)
    with_vocabulary_files_only(repo_dir)
    (repo_dir / "tokenizer_config.json").unlink()
    mask = {"content": "<mask>", "lstrip": True, "rstrip": False}
    (repo_dir / "special_tokens_map.json").write_text(json.dumps({"mask_token": mask}))
    out = tmp_path / "out"
    with serve_hub(tmp_path / "hub") as server:
        done = _prepare(
            [repo, "--out", str(out), "--cache-dir", str(tmp_path / "cache")],
            HF_ENDPOINT=url_of(server),
        )
    assert done.returncode == 0, done.stderr
    for name in ("vocab.json", "merges.txt", "special_tokens_map.json"):
        assert any(r.endswith(f"/{name}") for r in server.requests), name
    # The vocabulary's second download is found in the cache offline too.
    again = _prepare(
        [repo, "--out", str(tmp_path / "again"), "--cache-dir", str(tmp_path / "cache")],
        HF_ENDPOINT="http://127.0.0.1:9",
        HF_HUB_OFFLINE="1",
    )
    assert again.returncode == 0, again.stderr
    prepared = Tokenizer.from_file(str(out / "tokenizer.json"))
    original = Tokenizer.from_file(str(TINY_ROBERTA_MLM / "tokenizer.json"))
    texts = golden_roberta_texts()
    assert [e.ids for e in prepared.encode_batch(texts)] == [
        e.ids for e in original.encode_batch(texts)
    ]


def test_a_hub_repo_without_safetensors_says_where_a_conversion_may_be(
    hub: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    url, repo_dir, _ = hub
    (repo_dir / "model.safetensors").rename(repo_dir / "pytorch_model.bin")
    done = _prepare(
        [REPO, "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c")],
        HF_ENDPOINT=url,
    )
    assert done.returncode != 0
    assert "model.safetensors (not in the repo at this revision" in done.stderr
    assert f"try {REPO}@refs/pr/N" in done.stderr
    assert not (tmp_path / "out").exists()


def test_pinned_revision_and_offline_reuse_of_the_cache(
    hub: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    url, repo_dir, _ = hub
    cache = str(tmp_path / "cache")
    pinned = f"{REPO}@{commit_of(repo_dir)}"
    done = _prepare([pinned, "--out", str(tmp_path / "a"), "--cache-dir", cache], HF_ENDPOINT=url)
    assert done.returncode == 0, done.stderr
    # Offline, from the cache alone: no endpoint reachable at all.
    done = _prepare(
        [pinned, "--out", str(tmp_path / "b"), "--cache-dir", cache],
        HF_ENDPOINT="http://127.0.0.1:9",
        HF_HUB_OFFLINE="1",
    )
    assert done.returncode == 0, done.stderr
    assert read_manifest(tmp_path / "b").revision == commit_of(repo_dir)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("google-bert/no-such-model", "repository not found"),
        (f"{REPO}@0123456789abcdef0123456789abcdef01234567", "revision"),
    ],
)
def test_hub_errors_are_clear(
    hub: tuple[str, Path, list[str]], tmp_path: Path, source: str, message: str
) -> None:
    url, _, _ = hub
    done = _prepare(
        [source, "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c")],
        HF_ENDPOINT=url,
    )
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_offline_without_cache_says_how_to_fix_it(tmp_path: Path) -> None:
    done = _prepare(
        [REPO, "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "empty")],
        HF_HUB_OFFLINE="1",
    )
    assert done.returncode == 1
    assert "local model directory" in done.stderr
    assert "HF_ENDPOINT" in done.stderr


def test_local_directory_is_used_in_place() -> None:
    files = sources.fetch(str(TINY_BERT))
    assert files.root == TINY_BERT.resolve()
    assert files.revision is None
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(files.present())


def test_missing_local_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match="does not exist"):
        sources.fetch(str(tmp_path / "absent"))


def test_incomplete_local_directory_names_every_missing_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(MissingModelFilesError) as raised:
        sources.fetch(str(tmp_path))
    assert raised.value.missing == [
        "model.safetensors",
        "tokenizer.json, vocab.txt or vocab.json + merges.txt",
    ]


def test_repo_id_and_revision_are_split() -> None:
    assert sources.parse_repo_id("google-bert/bert-base-uncased@abc") == (
        "google-bert/bert-base-uncased",
        "abc",
    )
    assert sources.parse_repo_id("google-bert/bert-base-uncased") == (
        "google-bert/bert-base-uncased",
        None,
    )
