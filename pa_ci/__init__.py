"""pa-ci: pruning-aware training of zero-delay recurrent codecs for CI stimulation patterns.

Signal chain (Hinrichs & Ostermann, arXiv 2502.02424, §II-B)::

    audio --ace--> stimulation pattern (K x 22) --vocode--> audio --stoi vs clean--> VSTOI

The layers are subpackages along the data path: :mod:`pa_ci.chain` (audio, noise, ACE, vocoder,
STOI/VSTOI), :mod:`pa_ci.data`, :mod:`pa_ci.codec` (layout, model file, FRAE, streams, exports,
firmware), :mod:`pa_ci.train` (objective, SPSA, training, warm start), :mod:`pa_ci.prune`
(Eq. 2-6, sensitivity, schedules) and :mod:`pa_ci.experiment` (protocol, sweep); see
``docs/ARCHITECTURE.rst``. The names below are the public entry points. ``pa_ci.ace`` and
``pa_ci.stoi`` are the *functions*; their modules are :mod:`pa_ci.chain.ace` and
:mod:`pa_ci.chain.stoi` (the old paths ``pa_ci.ace``, ``pa_ci.frae``, ... still import).

The codec in five lines (:mod:`pa_ci.api`)::

    import pa_ci
    codec = pa_ci.load()                                    # the shipped model (or a path)
    pruned = pa_ci.prune_model(codec, rate=0.55, scope="decoder")   # the paper's protocol
    print(pa_ci.evaluate(pruned)["vstoi"])                  # mean test VSTOI
    pa_ci.export_model(pruned, "decoder.pacx")              # the sparse file for firmware
"""
from __future__ import annotations

__version__ = "0.1.0"

import sys
import types

from . import _compat  # noqa: E402
from .errors import AudioError, DataError, PaCiError, ParameterError  # noqa: E402

_compat.install()  # the module paths before the layers became subpackages (pa_ci.stoi, ...)

#: Public names that live in NumPy/SciPy/Numba-heavy modules, imported on first use (PEP 562),
#: so that ``import pa_ci`` and ``pa-ci --help`` start in a fraction of a second.
_LAZY = {"ace": "chain.ace", "AceParams": "chain.ace", "vocode": "chain.vocoder",
         "stoi": "chain.stoi", "vstoi": "chain.vstoi", "Reference": "chain.stoi",
         "load": "api", "dataset": "api", "prune_model": "api", "evaluate": "api",
         "export_model": "api"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pa_ci' has no attribute {name!r}")
    from importlib import import_module
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """``pa_ci.ace`` and ``pa_ci.stoi`` stay the functions after their submodules are imported
    (the import system would bind the submodule to the package attribute of the same name)."""

    def __setattr__(self, name: str, value) -> None:
        if name in ("ace", "stoi") and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = ["ace", "AceParams", "vocode", "stoi", "vstoi", "Reference",
           "load", "dataset", "prune_model", "evaluate", "export_model",
           "PaCiError", "AudioError", "DataError", "ParameterError", "__version__"]
