"""Datasets of speech in noise with their ACE patterns and clean references (paper §III-A).

:mod:`~pa_ci.data.config` (the configuration of a dataset), :mod:`~pa_ci.data.speakers`
(whose speech a file is), :mod:`~pa_ci.data.plan` (the speaker-disjoint split and the drawn
candidates), :mod:`~pa_ci.data.mixing` (speech in noise at an SNR), :mod:`~pa_ci.data.cache` (the
cache key and the folder on disk) and :mod:`~pa_ci.data.dataset` (items, building and loading; it
re-exports the configuration). The names of the former module ``pa_ci.data`` are forwarded from
them.
"""
from .._compat import forwarding_getattr

__getattr__ = forwarding_getattr(__name__, *(f"{__name__}.{module}" for module in
                                             ("dataset", "speakers", "plan", "mixing", "cache",
                                              "config")))
