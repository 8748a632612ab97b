"""k-means of the FRAE's latents into its vector-quantiser codebook (frae_spsa_research.md §3.4).

One concept: the codebook's k-means (Lloyd / LBG with k-means++ initialisation) and the usage
statistics of a codebook. The warm start (:mod:`pa_ci.train.warmstart`) runs it in rounds on
the model's own latents. Not an equation of the paper, which trains the codebook by SPSA (Eq. 7)
with every other parameter.
"""
from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..validate import is_int
from ..codec.bitstream import index_entropy

__all__ = ["kmeans", "codebook_usage"]


def kmeans(points: np.ndarray, k: int, *, seed: int, n_iter: int = 25,
           init: np.ndarray | None = None) -> np.ndarray:
    """k-means (Lloyd / LBG) of ``points`` (n, D) into ``k`` centroids (k, D), float64.

    Initialisation: k-means++ (Arthur & Vassilvitskii 2007) from ``Generator(seed)``, or the
    given ``init`` centroids. Assignment ties go to the lowest centroid index. A cluster that
    becomes empty is re-seeded with the point farthest from its own centroid (the largest
    contributors to the distortion first), so every centroid owns points as long as the points
    have at least k distinct values. Stops early when the assignment no longer changes.
    """
    P = np.asarray(points, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] < 1:
        raise ParameterError(f"kmeans: points must be a non-empty (n, D) array, got shape {P.shape}")
    if not np.all(np.isfinite(P)):
        raise ParameterError("kmeans: points contain NaN or Inf")
    if not is_int(k) or k < 1 or k > P.shape[0]:
        raise ParameterError(f"kmeans: k must be an int in 1..{P.shape[0]} (number of points), got {k!r}")
    if not is_int(n_iter) or n_iter < 0:
        raise ParameterError(f"kmeans: n_iter must be an int >= 0, got {n_iter!r}")
    n = P.shape[0]
    if init is None:
        cent = _kmeanspp(P, int(k), np.random.default_rng(seed))
    else:
        cent = np.array(init, dtype=np.float64)
        if cent.shape != (k, P.shape[1]):
            raise ParameterError(f"kmeans: init must have shape {(k, P.shape[1])}, got {cent.shape}")
    assign = np.full(n, -1, dtype=np.int64)
    for it in range(n_iter + 1):
        new, dist = _assign(P, cent)
        counts = np.bincount(new, minlength=k)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            far = np.argsort(-dist, kind="stable")
            taken = 0
            for e in empty:
                cent[e] = P[far[taken]]
                taken += 1
            new, dist = _assign(P, cent)
            counts = np.bincount(new, minlength=k)
        if it == n_iter or np.array_equal(new, assign):
            break
        assign = new
        for d in range(P.shape[1]):
            sums = np.bincount(assign, weights=P[:, d], minlength=k)
            nz = counts > 0
            cent[nz, d] = sums[nz] / counts[nz]
    return cent


def _assign(P: np.ndarray, cent: np.ndarray, chunk: int = 32768) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid (ties -> lowest index) and squared distance, in chunks of points."""
    n = P.shape[0]
    idx = np.empty(n, dtype=np.int64)
    dist = np.empty(n)
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        d = (P[a:b, 0:1] - cent[:, 0]) ** 2
        for j in range(1, P.shape[1]):
            d += (P[a:b, j:j + 1] - cent[:, j]) ** 2
        i = np.argmin(d, axis=1)
        idx[a:b] = i
        dist[a:b] = d[np.arange(b - a), i]
    return idx, dist


def _kmeanspp(P: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    n = P.shape[0]
    cent = np.empty((k, P.shape[1]))
    cent[0] = P[rng.integers(n)]
    d2 = ((P - cent[0]) ** 2).sum(axis=1)
    for j in range(1, k):
        total = d2.sum()
        if total > 0:
            i = int(np.searchsorted(np.cumsum(d2), rng.random() * total, side="right"))
            i = min(i, n - 1)
        else:                               # all points coincide with chosen centroids
            i = int(rng.integers(n))
        cent[j] = P[i]
        d2 = np.minimum(d2, ((P - cent[j]) ** 2).sum(axis=1))
    return cent


def codebook_usage(indices: np.ndarray, codebook_size: int) -> dict[str, float]:
    """Used codewords, and entropy (bits/frame, :func:`pa_ci.codec.bitstream.index_entropy`) /
    perplexity of the index histogram."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    counts = np.bincount(idx, minlength=codebook_size) if idx.size else np.zeros(codebook_size)
    ent = index_entropy(idx, codebook_size)
    return {"used": int((counts > 0).sum()), "entropy_bits": ent, "perplexity": float(2.0 ** ent)}
