"""The pruning-aware loss (Hinrichs & Ostermann, arXiv 2502.02424, §II-A 1), Eq. 5 and 6).

* :data:`PERTURBATIONS` -- the perturbation functions g of Eq. 6 (x, x^2, x^3 as in §II-D, and
  sqrt(x) of §IV); :func:`perturbation_scale` is g(n / n_max).
* :class:`PruningAwareObjective` -- Eq. 5 around any objective ``f(thetas, k)``, perturbing
  along the magnitude pruning direction (Eq. 4, :func:`pa_ci.prune.magnitude.pruning_direction`)
  scaled by Eq. 6.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..errors import ParameterError
from .magnitude import check_rate, n_pruned, pruned_indices, pruning_direction

__all__ = ["PERTURBATIONS", "MAX_LAMBDA", "perturbation", "perturbation_scale",
           "PruningAwareObjective"]

#: Perturbation functions g: [0, 1] -> [0, 1] of Eq. 6 (attack time of the perturbation).
PERTURBATIONS: dict[str, Callable[[float], float]] = {
    "linear": lambda x: x,
    "quadratic": lambda x: x * x,
    "cubic": lambda x: x * x * x,
    "sqrt": math.sqrt,
}


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

