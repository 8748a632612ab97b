"""What one run of the paper's pruning protocol is (§II-D): :class:`RunSpec` and its defaults.

The paper's counts (1000 PA + 7000 fine-tuning iterations, the baseline 8000), its two methods
and the checks of a run's fields; :mod:`pa_ci.experiment.protocol` runs a spec. Kept apart so
that the command line takes its choices and defaults from here without loading the kernels.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ParameterError
from ..prune.magnitude import check_rate, check_scope
from ..prune.pruning_aware import MAX_LAMBDA, PERTURBATIONS
from ..train.spsa import MAX_ITERATIONS
from ..validate import is_int, is_real

__all__ = ["METHODS", "RunSpec", "protocol_spec", "FINETUNE_SEED_OFFSET", "PAPER_PA_ITERS",
           "PAPER_FINETUNE_ITERS", "PAPER_BASELINE_ITERS"]

#: The paper's two procedures (§II-D).
METHODS = ("pa", "magnitude")
#: Fine-tuning draws its SPSA perturbations from seed + this (not the PA stage's stream).
FINETUNE_SEED_OFFSET = 7919
#: The paper's iteration counts (§II-D): PA training, fine-tuning after it, and the baseline's
#: fine-tuning (the same total).
PAPER_PA_ITERS = 1000
PAPER_FINETUNE_ITERS = 7000
PAPER_BASELINE_ITERS = PAPER_PA_ITERS + PAPER_FINETUNE_ITERS


@dataclass(frozen=True)
class RunSpec:
    """One run of the protocol; defaults are the paper's (1000 PA + 7000 fine-tune, g = x, lambda = 1).

    ``method="pa"``: ``pa_iters`` PA iterations, then ``finetune_iters`` fine-tuning iterations.
    ``method="magnitude"``: no PA training; it fine-tunes ``pa_iters + finetune_iters``
    iterations (:attr:`finetune_total`), the budget of the PA run with the same fields, which is
    how a sweep records its baseline (every run of a sweep shares ``pa_iters`` and
    ``finetune_iters``). To ask for counts as they are meant, use :func:`protocol_spec`.
    """

    rate: float
    scope: str
    method: str
    g: str = "linear"
    seed: int = 0
    pa_iters: int = 1000
    finetune_iters: int = 7000
    lam: float = 1.0

    def __post_init__(self) -> None:
        check_rate(self.rate)
        check_scope(self.scope)
        if self.method not in METHODS:
            raise ParameterError(f"pruning method {self.method!r}: expected one of {', '.join(METHODS)}")
        if self.method == "pa" and self.g not in PERTURBATIONS:
            raise ParameterError(f"perturbation function {self.g!r}: expected one of "
                                 f"{', '.join(PERTURBATIONS)}")
        for name in ("pa_iters", "finetune_iters"):
            v = getattr(self, name)
            if not is_int(v) or not 0 <= v <= MAX_ITERATIONS:
                raise ParameterError(f"{name.replace('_', '-')} must be an integer in 0..{MAX_ITERATIONS}, "
                                     f"got {v!r}")
        if not is_int(self.seed) or not 0 <= self.seed < 2 ** 63 - FINETUNE_SEED_OFFSET:
            raise ParameterError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.method == "pa" and self.pa_iters < 1:
            raise ParameterError("the pa method needs --pa-iters >= 1 (Eq. 6 divides by n_max)")
        if not (is_real(self.lam) and 0 <= self.lam <= MAX_LAMBDA):
            raise ParameterError(f"lambda must be a number in 0..{MAX_LAMBDA:g}, got {self.lam!r}")

    @property
    def finetune_total(self) -> int:
        """Fine-tuning iterations of this run: ``finetune_iters`` after PA training; for the
        baseline, which has no PA stage, ``pa_iters + finetune_iters``."""
        return self.finetune_iters + (self.pa_iters if self.method == "magnitude" else 0)

    def key(self) -> str:
        """A stable id, e.g. ``whole-pa-linear-r0.55-s1`` (g is ``-`` for magnitude)."""
        g = self.g if self.method == "pa" else "-"
        return f"{self.scope}-{self.method}-{g}-r{self.rate:g}-s{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.method != "pa":
            d["g"] = "-"
        return d


def protocol_spec(rate: float, scope: str, method: str = "pa", *, pa_iters: int | None = None,
                  finetune_iters: int | None = None, g: str = "linear", seed: int = 0,
                  lam: float = 1.0) -> RunSpec:
    """The run of ``method`` whose iteration counts are exactly the ones given.

    ``pa_iters``: PA training iterations (method ``pa``; default 1000; the baseline has no PA
    stage, so only None or 0 is accepted for it). ``finetune_iters``: fine-tuning iterations
    after pruning, exactly this many for either method (default: the paper's, 7000 after PA
    training and 8000 for the baseline, the same total). ``pa-ci prune`` and
    :func:`pa_ci.prune_model` build their runs with it.
    """
    if method == "magnitude":
        if pa_iters not in (None, 0):
            raise ParameterError(f"pa-iters {pa_iters!r}: the magnitude baseline has no PA "
                                 "training; its fine-tuning iterations are finetune-iters")
        n = PAPER_BASELINE_ITERS if finetune_iters is None else finetune_iters
        return RunSpec(rate=rate, scope=scope, method=method, g=g, seed=seed, pa_iters=0,
                       finetune_iters=n, lam=lam)
    return RunSpec(rate=rate, scope=scope, method=method, g=g, seed=seed,
                   pa_iters=PAPER_PA_ITERS if pa_iters is None else pa_iters,
                   finetune_iters=PAPER_FINETUNE_ITERS if finetune_iters is None else finetune_iters,
                   lam=lam)
