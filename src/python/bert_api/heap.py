"""The objects a server process keeps for its whole life, out of the cycle collector's way."""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """
    Collect once, then move every object alive now (modules, the app, the model's session and
    tokenizer) into the collector's permanent generation: a server process calls it once its
    model is loaded. Python's full collections otherwise walk all of them again every few hundred
    milliseconds under load, about 10 ms each in an engine process with all-MiniLM-L6-v2 loaded
    (54,000 objects): 22.3-24.1 against 24.9-29.1 us of the engine process's CPU per single-text
    submission (bench/engine_link_cost.py, docs/BENCHMARKS.md). What is frozen is never collected
    by the cycle collector, which is why a test's short-lived hosts do not call it.
    """
    gc.collect()
    gc.freeze()
