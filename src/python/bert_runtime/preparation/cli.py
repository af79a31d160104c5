"""
`prepare SOURCE --out DIR --device cpu|cuda --precision fp32|fp16|int8`: make a servable model
directory.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bert_runtime.config import Device, Precision
from bert_runtime.errors import BertRuntimeError
from bert_runtime.preparation.prepare import describe, prepare


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prepare",
        description="Turn a BERT checkpoint (local directory or Hugging Face repo id[@revision]) "
        "into an optimized ONNX model directory that bert_runtime serves.",
    )
    parser.add_argument(
        "source",
        help="local model directory, or a hub repo id such as google-bert/bert-base-uncased",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="directory to write (replaced atomically)"
    )
    parser.add_argument("--device", choices=[d.value for d in Device], default=Device.CPU.value)
    parser.add_argument(
        "--precision", choices=[p.value for p in Precision], default=Precision.FP32.value
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="hub download cache (default: HF_HUB_CACHE)"
    )
    parser.add_argument(
        "--packing",
        action="store_true",
        help="cuda only: padding-free attention (ONNX Runtime's packing mode)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    try:
        manifest = prepare(
            args.source,
            args.out,
            device=Device(args.device),
            precision=Precision(args.precision),
            cache_dir=args.cache_dir,
            packing=args.packing,
        )
    except BertRuntimeError as error:
        print(f"prepare: error: {error}", file=sys.stderr)
        return 1
    print(describe(manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
