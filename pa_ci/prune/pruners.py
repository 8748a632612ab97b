"""The per-tensor pruners of Distiller-style compression schedules, and the AGP ramp.

One concept: the pruner classes a schedule (:mod:`pa_ci.prune.schedule`) may name, each turning
the current weights into a new keep-mask for its tensors (masks only shrink), and
:func:`agp_sparsity` (Zhu & Gupta 2017, Eq. 1). Per-tensor pruning is Distiller's
(specs/pruning_peers_research.md §2.1); the paper's own global magnitude pruning (Eq. 2-4) is
:mod:`pa_ci.prune.magnitude`. How each pruner is read from YAML is :mod:`pa_ci.prune.schedule`.
"""
from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from ..codec.layout import Layout
from .policy import Policy
from .sensitivity import level_mask, tensor_std

__all__ = ["PRUNERS", "SensitivityPruner", "SparsityLevelParameterPruner", "AutomatedGradualPruner",
           "MagnitudeParameterPruner", "agp_sparsity"]


class _Pruner:
    """A per-tensor pruner; ``prune`` returns the new keep-mask (masks only shrink)."""

    class_name: ClassVar[str]
    arguments: ClassVar[tuple[str, ...]]

    def __init__(self, name: str, tensors: Sequence[str]) -> None:
        self.name = name
        self.tensors = tuple(tensors)

    def prune(self, theta: np.ndarray, layout: Layout, keep: np.ndarray, epoch: int,
              policy: Policy) -> tuple[np.ndarray, list[dict[str, Any]]]:
        keep = keep.copy()
        masked = np.where(keep, theta, 0.0)     # pruned entries are 0 (they rank smallest)
        rows = []
        for t in self.tensors:
            spec = layout[t]
            keep_t, target = self._keep(t, masked, layout, epoch, policy)
            keep[spec.slice] &= keep_t[spec.slice]
            rows.append({"tensor": t, "target": target,
                         "nonzero": int(keep[spec.slice].sum()), "size": spec.size})
        return keep, rows

    def _keep(self, tensor: str, theta: np.ndarray, layout: Layout, epoch: int,
              policy: Policy) -> tuple[np.ndarray, str]:
        """(keep-mask over the whole vector for ``tensor``, description of the target)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget state kept between pruning events (none by default)."""


class SensitivityPruner(_Pruner):
    """Keep |w| > s x std(w); std (ddof = 1) cached at the tensor's first pruning (Distiller)."""

    class_name = "SensitivityPruner"
    arguments = ("sensitivities",)

    def __init__(self, name: str, sensitivities: dict[str, float]) -> None:
        super().__init__(name, list(sensitivities))
        self.sensitivities = dict(sensitivities)
        self.std: dict[str, float] = {}

    def reset(self) -> None:
        self.std.clear()

    def _keep(self, tensor, theta, layout, epoch, policy):
        if tensor not in self.std:
            self.std[tensor] = tensor_std(theta, layout, tensor)
        threshold = float(self.sensitivities[tensor]) * self.std[tensor]
        return np.abs(theta) > threshold, f"|w|>{threshold:.6g}"


class SparsityLevelParameterPruner(_Pruner):
    """Per-tensor target sparsity: prune round(level x n) entries of smallest |w|."""

    class_name = "SparsityLevelParameterPruner"
    arguments = ("levels",)

    def __init__(self, name: str, levels: dict[str, float]) -> None:
        super().__init__(name, list(levels))
        self.levels = dict(levels)

    def _keep(self, tensor, theta, layout, epoch, policy):
        level = self.levels[tensor]
        return level_mask(theta, layout, tensor, level), f"level {level:g}"


def agp_sparsity(initial: float, final: float, epoch: int, first: int, last: int) -> float:
    """Zhu & Gupta (2017) Eq. 1: s_t = s_f + (s_i - s_f)(1 - (t - t_0)/span)^3, span = last - first.

    ``first``/``last`` are the policy's first and last pruning epochs, so s_t = s_i at the first
    and exactly s_f at the last event (Distiller's ``AgpPruningRate``: span =
    (ending_epoch - starting_epoch - 1) // frequency * frequency).
    """
    if last <= first:
        return float(final)
    x = min(max((epoch - first) / (last - first), 0.0), 1.0)
    if x == 0.0:                  # the endpoints exactly, without float round-off
        return float(initial)
    if x == 1.0:
        return float(final)
    return float(final + (initial - final) * (1.0 - x) ** 3)


class AutomatedGradualPruner(_Pruner):
    """Gradual pruning to a level that follows the cubic AGP ramp (:func:`agp_sparsity`)."""

    class_name = "AutomatedGradualPruner"
    arguments = ("initial_sparsity", "final_sparsity", "weights")

    def __init__(self, name: str, initial_sparsity: float, final_sparsity: float,
                 weights: Sequence[str]) -> None:
        super().__init__(name, weights)
        self.initial_sparsity = float(initial_sparsity)
        self.final_sparsity = float(final_sparsity)

    def level(self, epoch: int, policy: Policy) -> float:
        return agp_sparsity(self.initial_sparsity, self.final_sparsity, epoch,
                            policy.epochs[0], policy.epochs[-1])

    def _keep(self, tensor, theta, layout, epoch, policy):
        level = self.level(epoch, policy)
        return level_mask(theta, layout, tensor, level), f"level {level:.6g}"


class MagnitudeParameterPruner(_Pruner):
    """Keep |w| > threshold (a fixed threshold per tensor)."""

    class_name = "MagnitudeParameterPruner"
    arguments = ("thresholds",)

    def __init__(self, name: str, thresholds: dict[str, float]) -> None:
        super().__init__(name, list(thresholds))
        self.thresholds = dict(thresholds)

    def _keep(self, tensor, theta, layout, epoch, policy):
        t = self.thresholds[tensor]
        return np.abs(theta) > t, f"|w|>{t:.6g}"


#: The explicit registry of pruner classes a schedule may name (Distiller's class names).
PRUNERS: dict[str, type[_Pruner]] = {c.class_name: c for c in (
    SensitivityPruner, SparsityLevelParameterPruner, AutomatedGradualPruner, MagnitudeParameterPruner)}

#: Distiller pruners pa-ci knows of but does not implement (refused with a clear message).
_UNSUPPORTED_PRUNERS = ("BaiduRNNPruner", "SplicingPruner", "StructureParameterPruner",
                        "L1RankedStructureParameterPruner", "L1RankedStructureParameterPruner_AGP",
                        "L2RankedStructureParameterPruner_AGP", "ActivationAPoZRankedFilterPruner_AGP",
                        "GradientRankedFilterPruner_AGP", "RandomRankedFilterPruner_AGP",
                        "BernoulliFilterPruner_AGP", "AutomatedGradualPrunerBase",
                        "RandomLevelStructureParameterPruner", "StructuredAGP")
