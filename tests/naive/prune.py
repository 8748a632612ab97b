"""Plain Python twins of :mod:`pa_ci.prune`: the magnitude order of Eq. 2 (smallest |w| first,
ties by lower index), per-tensor level masks and the AGP ramp, written in the most obvious way."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pa_ci.codec.layout import Layout


def naive_pruned(values: Sequence[float] | np.ndarray, k: int,
                 eligible: Sequence[bool] | np.ndarray | None = None) -> set[int]:
    """Positions of the k smallest |w| among the eligible entries (all by default), ties by
    lower position: sort the (|w|, index) pairs, take the first k."""
    pairs = sorted((abs(float(values[i])), i) for i in range(len(values))
                   if eligible is None or eligible[i])
    return {i for _, i in pairs[:k]}


def naive_mask(theta: np.ndarray, layout: Layout, name: str, level: float) -> np.ndarray:
    """Keep-mask pruning round(level x n) entries of smallest |w| of tensor ``name`` only."""
    spec = layout[name]
    vals = [float(x) for x in theta[spec.slice]]
    keep = np.ones(layout.size, dtype=bool)
    for i in naive_pruned(vals, int(round(level * spec.size))):
        keep[spec.offset + i] = False
    return keep


def naive_agp_sparsity(initial: float, final: float, t: int, t0: int, span: int) -> float:
    """Zhu & Gupta (2017) Eq. 1 written out: s_f + (s_i - s_f) (1 - (t - t0) / span)^3."""
    return final + (initial - final) * (1 - (t - t0) / span) ** 3
