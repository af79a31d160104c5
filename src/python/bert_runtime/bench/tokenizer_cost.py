"""Tokenization's CPU per text, through the ASCII shortcut (ascii_shortcut.py) and without it.

Short English texts (3-30 words, as host_path_bench sends) encoded by TextTokenizer, one text or
32 a call, both ways in turn for `--rounds`; the table gives the median CPU microseconds a text.
Pass a model directory (its tokenizer.json); the tiny test model's by default.

    PYTHONPATH=src/python python3 -m bert_runtime.bench.tokenizer_cost --model <model dir>
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from bert_runtime.config import TruncationPolicy, TruncationSide
from bert_runtime.serving.tokenizer import TextTokenizer
from bert_runtime.testutil.models import TINY_BERT

_WORDS = "the quick brown fox jumps over lazy dog a cat sat on mat and ran far away home".split()


def _cpu_us_per_text(tokenizer: TextTokenizer, texts: list[str], per_call: int) -> float:
    calls = [texts[i : i + per_call] for i in range(0, len(texts), per_call)]
    started = time.process_time()
    for call in calls:
        tokenizer.encode(call)
    return 1e6 * (time.process_time() - started) / len(texts)


def main(argv: list[str] | None = None) -> int:
    """Print the table (see the module's doc)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, default=TINY_BERT)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    pick = random.Random(7)
    texts = [" ".join(pick.choices(_WORDS, k=pick.randint(3, 30))) for _ in range(4096)]
    shortcut = TextTokenizer.from_dir(args.model, 128, TruncationPolicy.TRUNCATE)
    full = TextTokenizer.from_dir(args.model, 128, TruncationPolicy.TRUNCATE)
    # The full path only, what every text took before the shortcut: the variant the tokenizer
    # made when built (with the shortcut) is made again without it.
    full._shortcut = None
    full._variants = {
        (TruncationPolicy.TRUNCATE, TruncationSide.RIGHT): full._variant(full._tokenizer)
    }
    print(f"{args.model.name}: CPU us a text, median of {args.rounds} rounds\n")
    print("| texts a call | full path | ASCII shortcut | speed-up |")
    print("|---:|---:|---:|---:|")
    for per_call in (1, 32):
        costs: dict[str, list[float]] = {"full": [], "shortcut": []}
        for _ in range(args.rounds):
            costs["full"].append(_cpu_us_per_text(full, texts, per_call))
            costs["shortcut"].append(_cpu_us_per_text(shortcut, texts, per_call))
        before, after = (statistics.median(costs[name]) for name in ("full", "shortcut"))
        print(f"| {per_call} | {before:.1f} | {after:.1f} | {before / after:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
