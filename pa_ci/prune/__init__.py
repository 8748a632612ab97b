"""Pruning: global magnitude pruning and the pruning-aware loss (paper Eq. 2-6), sensitivity analysis and schedules.

The names of the former module ``pa_ci.prune`` are forwarded from :mod:`pa_ci.prune.magnitude`
(Eq. 2-4) and :mod:`pa_ci.prune.pruning_aware` (Eq. 5/6).
"""
from .._compat import forwarding_getattr

__getattr__ = forwarding_getattr(__name__, __name__ + ".magnitude", __name__ + ".pruning_aware")
