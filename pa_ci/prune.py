"""Magnitude pruning and the pruning-aware objective (Hinrichs & Ostermann, arXiv 2502.02424, §II-A).

Everything works on ONE flat parameter vector ``theta`` and its :class:`~pa_ci.params.Layout`:

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
* :data:`PERTURBATIONS` -- the perturbation functions g of Eq. 6 (x, x^2, x^3 as in §II-D, and
  sqrt(x) of §IV).
* :class:`PruningAwareObjective` -- Eq. 5 around any objective ``f(thetas, k)``.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .errors import ParameterError
from .params import Layout

__all__ = ["SCOPES", "PERTURBATIONS", "eligible_mask", "n_pruned", "pruned_indices",
           "magnitude_mask", "pruning_direction", "prune", "perturbation", "perturbation_scale",
           "PruningAwareObjective", "check_rate", "check_scope", "sparsity_table"]

#: Pruning scopes -> the parts whose matrix weights are eligible (paper §II-D).
SCOPES: dict[str, tuple[str, ...]] = {
    "whole": ("encoder", "decoder"),
    "decoder": ("decoder",),
    "encoder": ("encoder",),
}

#: Perturbation functions g: [0, 1] -> [0, 1] of Eq. 6 (attack time of the perturbation).
PERTURBATIONS: dict[str, Callable[[float], float]] = {
    "linear": lambda x: x,
    "quadratic": lambda x: x * x,
    "cubic": lambda x: x * x * x,
    "sqrt": math.sqrt,
}


def check_rate(rate: float) -> float:
    """A pruning rate must be a real number in [0, 1]; return it as float."""
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise ParameterError(f"pruning rate {rate!r}: expected a number in [0, 1]") from None
    if not (0.0 <= r <= 1.0) or isinstance(rate, bool):
        raise ParameterError(f"pruning rate {rate!r}: expected a number in [0, 1] "
                             "(the fraction of eligible weights set to zero)")
    return r


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


def perturbation(name: str) -> Callable[[float], float]:
    """The perturbation function g of Eq. 6 by name (linear, quadratic, cubic, sqrt)."""
    try:
        return PERTURBATIONS[name]
    except KeyError:
        raise ParameterError(f"perturbation function {name!r}: expected one of "
                             f"{', '.join(PERTURBATIONS)}") from None


def perturbation_scale(g: str, n: int, n_max: int) -> float:
    """g(n / n_max) of Eq. 6, with n/n_max clipped to [0, 1]."""
    if n_max < 1:
        raise ParameterError(f"n_max must be >= 1, got {n_max}")
    return float(perturbation(g)(min(max(n / n_max, 0.0), 1.0)))


#: Largest lambda (Eq. 5) accepted: the paper uses 1; far larger only overflows the objective.
MAX_LAMBDA = 1e6


class PruningAwareObjective:
    """Eq. 5 around any objective: f_PA(w) = f(w) - s lambda |f(w) - f(w + dw_n)|.

    ``base(thetas (m, p), k) -> (m,)`` is the objective being optimised; ``maximize`` says which
    way (s = +1 for a score such as mean VSTOI, which SPSA maximises; s = -1 for a loss, giving the
    paper's L + lambda |L(w) - L(w + dw_n)|). With L = -VSTOI both forms are the same.

    dw_n = g(n / n_max) dw_magn(w) (Eq. 6) with dw_magn(w) the magnitude pruning direction
    (Eq. 4) of w at ``rate`` over the ``eligible`` entries, and n = k + 1 for SPSA iteration k
    (k = 0, ..., n_max - 1), so the last iteration sees the full pruning. The direction is taken
    from each evaluated point itself (each row of ``thetas``), so f_PA is a function of w alone and
    SPSA estimates its gradient; y+ and y- may prune slightly different sets near the threshold.
    Each call scores the rows and their perturbed copies in ONE call of ``base`` (2m rows).

    After a call, ``last_base`` and ``last_perturbed`` hold the mean of f over the rows and over
    their perturbed copies (for progress reports).
    """

    def __init__(self, base: Callable[[np.ndarray, int], np.ndarray], eligible: np.ndarray,
                 rate: float, *, g: str = "linear", n_max: int = 1000, lam: float = 1.0,
                 maximize: bool = True) -> None:
        self.base = base
        self.eligible = np.asarray(eligible, dtype=bool)
        self.rate = check_rate(rate)
        self.k_prune = n_pruned(self.rate, int(self.eligible.sum()))
        perturbation(g)
        self.g = g
        if int(n_max) < 1:
            raise ParameterError(f"pruning-aware training needs n_max >= 1 iterations, got {n_max}")
        self.n_max = int(n_max)
        if not (0.0 <= float(lam) <= MAX_LAMBDA):
            raise ParameterError(f"lambda must be a number in 0..{MAX_LAMBDA:g}, got {lam!r}")
        self.lam = float(lam)
        self.sign = 1.0 if maximize else -1.0
        self.last_base = float("nan")
        self.last_perturbed = float("nan")

    def scale(self, k: int) -> float:
        """g(n / n_max) for SPSA iteration k (n = k + 1)."""
        return perturbation_scale(self.g, int(k) + 1, self.n_max)

    def perturbed(self, thetas: np.ndarray, k: int) -> np.ndarray:
        """w + g(n/n_max) dw_magn(w) for every row (Eq. 6 applied to Eq. 4)."""
        thetas = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
        s = self.scale(k)
        out = thetas.copy()
        for row, src in zip(out, thetas):
            row += s * pruning_direction(src, pruned_indices(src, self.eligible, self.k_prune))
        return out

    def parts(self, thetas: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(f(w), f(w + dw_n)) per row, from one call of the base objective."""
        thetas = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
        both = np.asarray(self.base(np.concatenate([thetas, self.perturbed(thetas, k)]), k),
                          dtype=np.float64)
        m = len(thetas)
        return both[:m], both[m:]

    def __call__(self, thetas: np.ndarray, k: int = 0) -> np.ndarray:
        f, f_pert = self.parts(thetas, k)
        self.last_base, self.last_perturbed = float(f.mean()), float(f_pert.mean())
        return f - self.sign * self.lam * np.abs(f - f_pert)


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
