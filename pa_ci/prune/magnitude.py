"""Global unstructured magnitude pruning (Hinrichs & Ostermann, arXiv 2502.02424, §II-A, Eq. 2-4).

Everything works on ONE flat parameter vector ``theta`` and its :class:`~pa_ci.codec.layout.Layout`:

* a pruning *scope* selects the eligible entries: the matrix weights (kind ``weight``) of
  ``whole`` = encoder + decoder, ``decoder`` or ``encoder``. Biases and the codebook are never
  eligible (paper §II-D: "Only pruning of the weights (in contrast to bias pruning) is
  considered"); for ``decoder`` the rate counts decoder weights only.
* :func:`n_pruned` -- k = round(rate x eligible) (DECISIONS.md, Pruning), Python's ``round``.
* :func:`pruned_indices` -- the set I_pruned of Eq. 2: the k eligible entries of smallest |w|,
  ties broken by index (lower index pruned first), so the result is deterministic and the sets
  nest as the rate grows.
* :func:`pruning_direction` -- Eq. 4, dw_i = -w_i on I_pruned and 0 elsewhere, so that
  P(w) = w + dw (Eq. 3) is the pruned network of Eq. 2 (:func:`prune`).
* :func:`sparsity_table`, :func:`part_counts` -- what a (pruned) theta holds, per tensor and
  per part.

The pruning-aware loss built on the magnitude direction (Eq. 5/6) is :mod:`pa_ci.prune.pruning_aware`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import ParameterError
from ..codec.layout import PARTS, Layout
from ..validate import check_rate

if TYPE_CHECKING:
    from ..codec.frae import FraeConfig

__all__ = ["SCOPES", "eligible_mask", "n_pruned", "pruned_indices", "magnitude_mask",
           "pruning_direction", "prune", "check_rate", "check_scope", "sparsity_table", "part_counts",
           "part_totals"]

#: Pruning scopes -> the parts whose matrix weights are eligible (paper §II-D).
SCOPES: dict[str, tuple[str, ...]] = {
    "whole": ("encoder", "decoder"),
    "decoder": ("decoder",),
    "encoder": ("encoder",),
}


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ParameterError(f"pruning scope {scope!r}: expected one of {', '.join(SCOPES)}")
    return scope


def eligible_mask(layout: Layout, scope: str) -> np.ndarray:
    """Bool ``(layout.size,)``: the matrix weights of the scope (never biases or the codebook)."""
    return layout.mask(parts=SCOPES[check_scope(scope)], kinds="weight")


def n_pruned(rate: float, n_eligible: int) -> int:
    """k = round(rate x eligible): how many weights a rate prunes (DECISIONS.md, Pruning)."""
    return int(round(check_rate(rate) * int(n_eligible)))


def pruned_indices(theta: np.ndarray, eligible: np.ndarray, k: int) -> np.ndarray:
    """I_pruned of Eq. 2: the ``k`` eligible indices of smallest |theta|, ties by lower index.

    Returned in ascending index order. Sorting by |w| with a stable sort over the eligible
    indices (ascending) breaks ties by index, so the sets for k < k' are nested.
    """
    idx = np.flatnonzero(eligible)
    if not 0 <= k <= idx.size:
        raise ParameterError(f"cannot prune {k} of {idx.size} eligible weights")
    order = np.argsort(np.abs(theta[idx]), kind="stable")
    return np.sort(idx[order[:k]])


def magnitude_mask(theta: np.ndarray, layout: Layout, scope: str, rate: float) -> np.ndarray:
    """Keep-mask of global unstructured magnitude pruning: False on I_pruned, True elsewhere."""
    eligible = eligible_mask(layout, scope)
    keep = np.ones(layout.size, dtype=bool)
    keep[pruned_indices(theta, eligible, n_pruned(rate, eligible.sum()))] = False
    return keep


def pruning_direction(theta: np.ndarray, pruned: np.ndarray) -> np.ndarray:
    """Eq. 4: dw_i = -w_i for i in I_pruned (indices or a bool mask), 0 otherwise."""
    dw = np.zeros_like(theta, dtype=np.float64)
    dw[pruned] = -theta[pruned]
    return dw


def prune(theta: np.ndarray, layout: Layout, scope: str, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 2/3: P(w) = w + dw with the magnitude direction; returns (pruned theta, keep mask).

    The pruned entries are exactly +0.0 in the result.
    """
    keep = magnitude_mask(theta, layout, scope, rate)
    out = np.array(theta, dtype=np.float64)
    out[~keep] = 0.0
    return out, keep


def sparsity_table(theta: np.ndarray, layout: Layout) -> list[dict]:
    """Per tensor: name, part, kind, shape, size, nnz, sparsity, std, mean |w| (``pa-ci report``)."""
    rows = []
    for spec in layout.tensors:
        w = theta[spec.slice]
        nnz = int(np.count_nonzero(w))
        rows.append({"name": spec.name, "part": spec.part, "kind": spec.kind,
                     "shape": list(spec.shape), "size": spec.size, "nnz": nnz,
                     "sparsity": 1.0 - nnz / spec.size, "std": float(w.std()),
                     "mean_abs": float(np.abs(w).mean())})
    return rows


def part_counts(theta: np.ndarray, config: FraeConfig) -> dict[str, int]:
    """Matrix weights and non-zero matrix weights of the encoder and the decoder."""
    from ..codec.frae import frae_layout    # Numba-heavy: imported when first needed

    layout = frae_layout(config)
    out: dict[str, int] = {}
    for part in ("encoder", "decoder"):
        m = layout.mask(parts=part, kinds="weight")
        out[f"weights_{part}"] = int(m.sum())
        out[f"nonzero_{part}"] = int(np.count_nonzero(theta[m]))
    return out


def part_totals(rows: Sequence[dict]) -> dict[str, dict[str, float]]:
    """Per part with matrix weights (encoder, decoder, codebook): ``weights``,
    ``nonzero_weights`` and ``sparsity``, summed over the :func:`sparsity_table` rows."""
    totals: dict[str, dict[str, float]] = {}
    for part in PARTS:
        weights = [r for r in rows if r["part"] == part and r["kind"] == "weight"]
        if weights:
            size = sum(r["size"] for r in weights)
            nnz = sum(r["nnz"] for r in weights)
            totals[part] = {"weights": size, "nonzero_weights": nnz, "sparsity": 1 - nnz / size}
    return totals
