"""
MPNet's relative position bias, precomputed per distance so the graph only gathers from it.

MPNet adds to every layer's attention scores a per-head bias looked up by the bucket of each
key-minus-query distance (T5's bidirectional buckets: exact for short distances, logarithmic up to
128). The bucket of a distance never depends on the input, so the table is built here, once, with
the same float32 arithmetic as transformers, and the graph indexes it by distance.
"""

from __future__ import annotations

import math

import numpy as np

# transformers' MPNetEncoder always computes 32 buckets up to distance 128, whatever the config.
BUCKETS = 32
MAX_DISTANCE = 128


def relative_position_buckets(distance: np.ndarray) -> np.ndarray:
    """
    The bucket of each key-minus-query distance, as transformers' relative_position_bucket
    computes it (float32 logarithm, truncated): queries before keys take the upper half.
    """
    n = -distance.astype(np.int64)
    half = BUCKETS // 2
    side = np.where(n < 0, half, 0)
    n = np.abs(n)
    exact = half // 2
    # Distances below `exact` are their own bucket; clamping keeps log() finite for them.
    ratio = np.maximum(n, exact).astype(np.float32) / np.float32(exact)
    scale = np.float32(math.log(MAX_DISTANCE / exact))
    logarithmic = (np.log(ratio) / scale * np.float32(half - exact)).astype(np.int64)
    far = np.minimum(exact + logarithmic, half - 1)
    buckets: np.ndarray = side + np.where(n < exact, n, far)
    return buckets


def bias_by_distance(table: np.ndarray, max_positions: int) -> np.ndarray:
    """
    [2 * max_positions - 1, heads]: row d + max_positions - 1 holds the per-head bias of distance d
    (key minus query), from the checkpoint's [buckets, heads] table.
    """
    distances = np.arange(-(max_positions - 1), max_positions)
    rows: np.ndarray = np.ascontiguousarray(table[relative_position_buckets(distances)])
    return rows
